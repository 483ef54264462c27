/*
 * consensus/peer.h: the peer channel between members (DESIGN.md, "Peers"):
 * forwarded writes, admin queries, replies. Messages are opaque bytes here
 * (wire/peer.proto above); this module moves them over TCP with TLS 1.3
 * and both members' certificates checked (consensus/tls.h), so that
 * nothing but a member can inject, read or replay a frame, and the sender
 * of every frame is the member its connection's certificate names.
 *
 * A frame is {u32 length, u64 sender id, body}, little endian, inside the
 * TLS stream; a frame whose sender is not the connection's member drops
 * the connection. Without credentials (`insecure = true`, for tests) the
 * frames travel as they are and the sender is taken on trust.
 *
 * Each member keeps one outgoing connection per destination (made on
 * demand, re-made with back-off); replies travel on the replier's own
 * outgoing connection. Frames to one destination arrive in order.
 */
#ifndef XSR_CONSENSUS_PEER_H
#define XSR_CONSENSUS_PEER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define PEER_MAX_FRAME (16u << 20) /* body bytes */

struct peer;

struct peer_handler {
	void *data;
	/* An authenticated frame from member `from`. body is borrowed. */
	void (*recv)(void *data, uint64_t from, const void *body, size_t len);
	/* A log line (level 3 error ... 7 debug). */
	void (*log)(void *data, int level, const char *msg);
};

struct tls_creds;

/* Connections from one source address, and in all, at once. */
#define PEER_MAX_PER_SOURCE 16
#define PEER_MAX_INCOMING 256

/*
 * Listen on listen_address ("127.0.0.1:7302", numeric IPv4 or [IPv6]).
 * cr: this member's TLS credentials (borrowed, must outlive the peer), or
 * NULL to send and accept plain frames (insecure).
 */
int peer_open(uv_loop_t *loop, uint64_t self, const char *listen_address,
	      struct tls_creds *cr, const struct peer_handler *h,
	      struct peer **out);

/* Where member id listens (replaces an earlier address). */
int peer_set_address(struct peer *p, uint64_t id, const char *address);

/*
 * Queue body for member `to`. The body is copied. -ENOENT for an unknown
 * member, -ENOBUFS if too much is already queued for it (it is not
 * reachable), -E2BIG over PEER_MAX_FRAME.
 */
int peer_send(struct peer *p, uint64_t to, const void *body, size_t len);

/* Is the connection to `to` up right now? */
bool peer_connected(struct peer *p, uint64_t to);

/* Close everything; cb(arg) once every handle is closed. */
void peer_close(struct peer *p, void (*cb)(void *arg), void *arg);

/* ---- Frames -------------------------------------------------------------- */

#define PEER_FRAME_HDR (4 + 8) /* length, sender */

/* One frame as received (peer_frame_parse). */
struct peer_frame {
	uint64_t from;
	const uint8_t *body; /* points into the parsed buffer */
	size_t len;	     /* body bytes */
	size_t size;	     /* the whole frame's bytes, header included */
};

/*
 * Lay out one frame into out (PEER_FRAME_HDR + len bytes). len is at most
 * PEER_MAX_FRAME. Pure, as is peer_frame_parse.
 */
void peer_frame_put(uint64_t from, const void *body, size_t len,
		    uint8_t *out);

/*
 * Parse the frame at the start of buf, the n bytes received so far from
 * the stream. 1: a whole frame is there and *f says what it is; 0: more
 * bytes are needed; -EBADMSG: its length is impossible (the stream cannot
 * be resynchronised: drop it). Whether the sender may send it is the
 * caller's to judge.
 */
int peer_frame_parse(const uint8_t *buf, size_t n, struct peer_frame *f);

#endif
