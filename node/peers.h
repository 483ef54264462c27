/*
 * node/peers.h: the daemon's end of the peer channel (consensus/peer.h):
 * sends a PeerMsg to a member by id, wherever the cluster table or the
 * config file says it listens, and hands each message received to the
 * module that registered for its kind (submit: forwarded entries; cluster:
 * status, digests, admin commands). A cluster of one has no channel:
 * sending fails with -ENOTCONN and nothing is ever received.
 */
#ifndef XSR_NODE_PEERS_H
#define XSR_NODE_PEERS_H

#include <stdbool.h>
#include <stdint.h>

#include "wire/peer.pb-c.h"

struct daemon;

/* Called for each message of a kind; m is borrowed for the call. */
typedef void peers_recv_fn(struct daemon *d, uint64_t from,
			   const Xsr__PeerMsg *m);

/* Create the module (d->peers), before the modules that register with
 * it. 0 or -ENOMEM. */
int peers_open(struct daemon *d);
/*
 * A cluster member: listen on its peer address and send to its members,
 * once the log is open (messages are handled from then on). 0 or the
 * channel's error; nothing for a cluster of one.
 */
int peers_listen(struct daemon *d);
/* Stop listening and sending; cb(arg) once closed (at once without). */
void peers_close(struct daemon *d, void (*cb)(void *arg), void *arg);
void peers_free(struct daemon *d);
/* Is there a peer channel (a cluster member, not a cluster of one)? */
bool peers_enabled(const struct daemon *d);
/* Messages of kind go to fn from now on (one handler per kind). */
void peers_on(struct daemon *d, Xsr__PeerMsg__MCase kind, peers_recv_fn *fn);
/* Pack m and send it to member `to`: 0 or a negative errno. */
int peers_send(struct daemon *d, uint64_t to, const Xsr__PeerMsg *m);
/* When member id's last frame arrived (uv_now()), 0 if none did. */
uint64_t peers_heard_ms(const struct daemon *d, uint64_t id);

#endif
