/*
 * node/peers.c: the peer channel's routing (node/peers.h): member
 * addresses from the cluster table (else the config file), packing, and
 * one handler per message kind.
 */
#include "node/peers.h"
#include "node/daemon.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>

#include "consensus/peer.h"

#define KINDS 16 /* above every Xsr__PeerMsg__MCase */
#define HEARD_MAX 64 /* members whose last frame is remembered */

struct peers {
	struct peer *chan; /* NULL for a cluster of one */
	peers_recv_fn *on[KINDS];
	/* when each member's last frame came (peers_heard_ms) */
	struct {
		uint64_t id, ms;
	} heard[HEARD_MAX];
	unsigned n_heard;
};

/* A frame, even an undecodable one, shows that its member ran just now. */
static void heard(struct daemon *d, uint64_t from)
{
	struct peers *p = d->peers;
	unsigned i;

	for (i = 0; i < p->n_heard && p->heard[i].id != from; i++)
		;
	if (i == HEARD_MAX)
		return;
	p->heard[i].id = from;
	p->heard[i].ms = uv_now(d->loop);
	if (i == p->n_heard)
		p->n_heard++;
}

uint64_t peers_heard_ms(const struct daemon *d, uint64_t id)
{
	unsigned i;

	for (i = 0; d->peers && i < d->peers->n_heard; i++)
		if (d->peers->heard[i].id == id)
			return d->peers->heard[i].ms;
	return 0;
}

static const char *member_peer_address(struct daemon *d, uint64_t id)
{
	const struct store_member *m = store_member_by_id(d->store, id);
	size_t i;

	if (m && m->peer_address[0])
		return m->peer_address;
	for (i = 0; i < d->cfg.cluster.n_members; i++)
		if (d->cfg.cluster.members[i].id == id)
			return d->cfg.cluster.members[i].peer_address;
	return NULL;
}

static void recv_msg(void *data, uint64_t from, const void *body, size_t len)
{
	struct daemon *d = data;
	Xsr__PeerMsg *m = xsr__peer_msg__unpack(NULL, len, body);

	heard(d, from);
	if (!m) {
		log_msg(4, "undecodable peer message from member %" PRIu64,
			from);
		return;
	}
	if ((unsigned)m->m_case < KINDS && d->peers->on[m->m_case])
		d->peers->on[m->m_case](d, from, m);
	xsr__peer_msg__free_unpacked(m, NULL);
}

int peers_open(struct daemon *d)
{
	d->peers = calloc(1, sizeof(*d->peers));
	return d->peers ? 0 : -ENOMEM;
}

int peers_listen(struct daemon *d)
{
	const struct cluster_cfg *cl = &d->cfg.cluster;
	struct peer_handler h = {.data = d, .recv = recv_msg, .log = log_cb};
	struct peers *p = d->peers;
	size_t i;
	int rc;

	if (!cl->enabled)
		return 0;
	rc = peer_open(d->loop, d->member_id, cl->self.peer_address,
		       d->tls, &h, &p->chan);
	if (rc)
		return rc;
	for (i = 0; i < cl->n_members; i++)
		if (cl->members[i].id != d->member_id)
			peer_set_address(p->chan, cl->members[i].id,
					 cl->members[i].peer_address);
	return 0;
}

void peers_close(struct daemon *d, void (*cb)(void *arg), void *arg)
{
	struct peer *chan = d->peers ? d->peers->chan : NULL;

	if (!chan) {
		cb(arg);
		return;
	}
	d->peers->chan = NULL;
	peer_close(chan, cb, arg);
}

void peers_free(struct daemon *d)
{
	free(d->peers);
	d->peers = NULL;
}

bool peers_enabled(const struct daemon *d)
{
	return d->peers && d->peers->chan;
}

void peers_on(struct daemon *d, Xsr__PeerMsg__MCase kind, peers_recv_fn *fn)
{
	if ((unsigned)kind < KINDS)
		d->peers->on[kind] = fn;
}

int peers_send(struct daemon *d, uint64_t to, const Xsr__PeerMsg *m)
{
	size_t len = xsr__peer_msg__get_packed_size(m);
	const char *address;
	uint8_t *buf;
	int rc;

	if (!peers_enabled(d))
		return -ENOTCONN;
	address = member_peer_address(d, to);
	if (!address)
		return -ENOENT;
	rc = peer_set_address(d->peers->chan, to, address);
	if (rc)
		return rc;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	xsr__peer_msg__pack(m, buf);
	rc = peer_send(d->peers->chan, to, buf, len);
	free(buf);
	return rc;
}
