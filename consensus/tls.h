/*
 * consensus/tls.h: TLS 1.3 with mutual certificate authentication over a
 * libuv TCP stream (OpenSSL 3, memory BIOs), for the cluster's two
 * channels: the Raft transport (consensus/repl_tls.c) and the peer
 * channel (consensus/peer.c).
 *
 * Credentials: a cluster CA (one or more certificates in ca-file: every
 * one is trusted, which is how a CA is rotated), and each member's own
 * certificate, signed by it, whose common name is "xsr-member-<id>": the
 * member id the other side is proved to talk to. Nothing is read from the
 * peer beyond a bounded handshake before it is authenticated: the
 * handshake must finish within its timeout and in at most
 * TLS_HANDSHAKE_MAX_BYTES, and a certificate must name a member.
 */
#ifndef XSR_CONSENSUS_TLS_H
#define XSR_CONSENSUS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#define TLS_HANDSHAKE_TIMEOUT_MS 5000
#define TLS_HANDSHAKE_MAX_BYTES (32 * 1024)
#define TLS_CN_PREFIX "xsr-member-"
#define TLS_HIGH_WATER (4u << 20) /* queued: the writer should wait */
#define TLS_LOW_WATER (1u << 20)

typedef void (*tls_log_fn)(void *data, int level, const char *msg);

struct tls_creds;

/*
 * Load the CA file, this member's certificate (chain) and its private key.
 * The key file must not be readable by group or others. self_id, if not
 * 0, must be the id the certificate names. 0, or a negative errno with
 * err[] saying which file and why.
 */
int tls_creds_load(const char *ca_file, const char *cert_file,
		   const char *key_file, uint64_t self_id,
		   struct tls_creds **out, char *err, size_t errlen);
void tls_creds_free(struct tls_creds *cr);
/* The id this member's certificate names. */
uint64_t tls_creds_self(const struct tls_creds *cr);
/*
 * Does this member's own certificate verify against its CA file, today?
 * 0, or -EINVAL with OpenSSL's reason in msg ("certificate has expired",
 * "unable to get local issuer certificate"): peers will refuse it. The
 * daemon logs it at start and runs on (a member's clock may be the
 * wrong one; the peers judge).
 */
int tls_creds_check_own(const struct tls_creds *cr, char *msg, size_t len);

/* Is path safe for a secret: a regular file, not readable by group or
 * others? 0, or a negative errno with err[] saying why. */
int tls_check_secret_file(const char *path, char *err, size_t errlen);

struct tls_conn;

struct tls_conn_ops {
	void *data;
	/* The handshake is done: the peer is member peer_id. */
	void (*ready)(void *data, struct tls_conn *c, uint64_t peer_id);
	/* Plaintext from the peer (only after ready). */
	void (*recv)(void *data, struct tls_conn *c, const void *buf,
		     size_t len);
	/* The connection is over (why: NULL for a close we asked for);
	 * called exactly once, after which c is freed by this module. */
	void (*closed)(void *data, struct tls_conn *c, const char *why);
	/* Optional: what tls_conn_queued() counts fell below
	 * TLS_LOW_WATER after having been above TLS_HIGH_WATER. */
	void (*drained)(void *data, struct tls_conn *c);
	tls_log_fn log;
};

/*
 * Run TLS over tcp (connected or accepted; taken over: this module closes
 * and frees it, allocated with malloc). server: which side of the
 * handshake. expect_id: the member the peer must be (0: any member).
 * peer_name is for log lines ("127.0.0.1:4321"). 0 or a negative errno
 * (tcp is then closed and freed already, and no callback is called).
 *
 * cr NULL: no TLS at all (a cluster configured `insecure = true`, for
 * tests): the bytes pass as they are, and ready() says peer 0 (unknown)
 * at the next loop iteration.
 */
int tls_conn_start(uv_loop_t *loop, struct tls_creds *cr, uv_tcp_t *tcp,
		   bool server, uint64_t expect_id, const char *peer_name,
		   const struct tls_conn_ops *ops, struct tls_conn **out);
/* Queue plaintext for the peer (after ready). 0 or -ENOMEM, -ENOTCONN. */
int tls_conn_write(struct tls_conn *c, const void *buf, size_t len);
/* Plaintext queued but not yet handed to the kernel. */
size_t tls_conn_queued(const struct tls_conn *c);
/* Stop reading from the peer, or read again (back-pressure). */
void tls_conn_pause(struct tls_conn *c, bool paused);
/* Close (sends close_notify if it can); ops->closed follows. */
void tls_conn_close(struct tls_conn *c);
const char *tls_conn_peer(const struct tls_conn *c);

/*
 * An accepted connection's peer, for log lines ("192.0.2.1:40000", or
 * "?:0") and for per-source caps (its address alone), from both
 * channels' listeners.
 */
void tls_peer_name(uv_tcp_t *tcp, char *peer, size_t plen, char *source,
		   size_t slen);

#endif
