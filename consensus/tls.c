/*
 * consensus/tls.c: TLS 1.3 over libuv TCP streams with OpenSSL's memory
 * BIOs (consensus/tls.h): bytes from the socket go into the read BIO,
 * OpenSSL's output is taken from the write BIO and written to the socket.
 * Both sides present a certificate signed by the cluster CA.
 */
#include "consensus/tls.h"
#include "consensus/quiet.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define READ_CHUNK 65536

struct tls_creds {
	SSL_CTX *ctx;
	uint64_t self;
	struct quiet quiet; /* refusals, on both channels */
};

struct tls_conn {
	uv_tcp_t *tcp;
	uv_timer_t timer; /* the handshake's deadline */
	SSL *ssl;
	BIO *rbio, *wbio; /* network side, owned by ssl */
	struct tls_conn_ops ops;
	struct tls_creds *cr; /* NULL when plain */
	uint64_t expect_id, peer_id;
	char peer[64];
	size_t handshake_bytes;
	size_t queued;	/* bytes in uv_write requests not yet done */
	unsigned handles; /* tcp and timer, until both closed */
	bool plain; /* no TLS: insecure = true */
	bool server; /* the peer connected to us */
	bool ready, closing, paused, reading, told, above;
	const char *why; /* of the close, for ops.closed */
};

static void say(const struct tls_conn_ops *ops, int level, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

static void say(const struct tls_conn_ops *ops, int level, const char *fmt,
		...)
{
	char msg[512];
	va_list ap;

	if (!ops->log)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	ops->log(ops->data, level, msg);
}

/*
 * A refusal of c's peer, at warning level, as often as consensus/quiet.h
 * lets it. kind names the reason, with its detail: a new reason is news.
 */
static void refusal(struct tls_conn *c, const char *kind, const char *fmt,
		    ...) __attribute__((format(printf, 3, 4)));

static void refusal(struct tls_conn *c, const char *kind, const char *fmt,
		    ...)
{
	char msg[512], key[128], more[96];
	const char *colon = strrchr(c->peer, ':');
	va_list ap;
	int n;

	/* a peer that connects to us comes from any port of its address */
	n = c->server && colon ? (int)(colon - c->peer) : (int)strlen(c->peer);
	snprintf(key, sizeof(key), "%.*s|%s", n, c->peer, kind);
	if (c->cr && !quiet_allow(&c->cr->quiet, uv_now(c->tcp->loop), key,
				  more, sizeof(more)))
		return;
	if (!c->cr)
		more[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	say(&c->ops, 4, "%s%s", msg, more);
}

/* OpenSSL's reason for the last failure, for a log line. */
static const char *ssl_reason(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (!e)
		return "no detail";
	ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* ---- Credentials -------------------------------------------------------- */

int tls_check_secret_file(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (stat(path, &st)) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "%s is not a regular file", path);
		return -EINVAL;
	}
	if (st.st_mode & 0077) {
		snprintf(err, errlen,
			 "%s is readable by others (mode %04o): it must be "
			 "0600 (chmod 600 %s)",
			 path, (unsigned)(st.st_mode & 07777), path);
		return -EPERM;
	}
	return 0;
}

/* The member id a certificate names ("xsr-member-<id>"), or 0. */
static uint64_t cert_member(X509 *x)
{
	char cn[128];
	char *end;
	unsigned long long v;
	int n = X509_NAME_get_text_by_NID(X509_get_subject_name(x),
					  NID_commonName, cn, sizeof(cn));
	size_t plen = strlen(TLS_CN_PREFIX);

	if (n <= 0 || (size_t)n <= plen || strncmp(cn, TLS_CN_PREFIX, plen))
		return 0;
	v = strtoull(cn + plen, &end, 10);
	if (*end || v == 0)
		return 0;
	return (uint64_t)v;
}

/* How many certificates the CA file holds. */
static int ca_count(const char *ca_file)
{
	FILE *f = fopen(ca_file, "re");
	int n = 0;
	X509 *x;

	if (!f)
		return 0;
	while ((x = PEM_read_X509(f, NULL, NULL, NULL))) {
		X509_free(x);
		n++;
	}
	ERR_clear_error();
	fclose(f);
	return n;
}

int tls_creds_load(const char *ca_file, const char *cert_file,
		   const char *key_file, uint64_t self_id,
		   struct tls_creds **out, char *err, size_t errlen)
{
	struct tls_creds *cr = calloc(1, sizeof(*cr));
	char why[256];
	X509 *own;
	int rc;

	if (!cr) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	rc = tls_check_secret_file(key_file, err, errlen);
	if (rc)
		goto fail;
	rc = -EINVAL;
	cr->ctx = SSL_CTX_new(TLS_method());
	if (!cr->ctx) {
		snprintf(err, errlen, "TLS: %s", ssl_reason(why, sizeof(why)));
		goto fail;
	}
	SSL_CTX_set_min_proto_version(cr->ctx, TLS1_3_VERSION);
	SSL_CTX_set_verify(cr->ctx,
			   SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT,
			   NULL);
	/* a certificate chain is small: refuse big ones before auth */
	SSL_CTX_set_max_cert_list(cr->ctx, 16 * 1024);
	SSL_CTX_set_session_cache_mode(cr->ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_num_tickets(cr->ctx, 0);
	/* idle connections give their buffers back */
	SSL_CTX_set_mode(cr->ctx, SSL_MODE_RELEASE_BUFFERS);
	if (SSL_CTX_load_verify_locations(cr->ctx, ca_file, NULL) != 1) {
		snprintf(err, errlen, "CA file %s: %s", ca_file,
			 ssl_reason(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_certificate_chain_file(cr->ctx, cert_file) != 1) {
		snprintf(err, errlen, "certificate file %s: %s", cert_file,
			 ssl_reason(why, sizeof(why)));
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(cr->ctx, key_file, SSL_FILETYPE_PEM) !=
		    1 ||
	    SSL_CTX_check_private_key(cr->ctx) != 1) {
		snprintf(err, errlen, "key file %s (for %s): %s", key_file,
			 cert_file, ssl_reason(why, sizeof(why)));
		goto fail;
	}
	own = SSL_CTX_get0_certificate(cr->ctx);
	cr->self = own ? cert_member(own) : 0;
	if (!cr->self) {
		snprintf(err, errlen,
			 "certificate %s does not name a member (its common "
			 "name must be %s<id>)",
			 cert_file, TLS_CN_PREFIX);
		goto fail;
	}
	if (self_id && cr->self != self_id) {
		snprintf(err, errlen,
			 "certificate %s is member %" PRIu64 "'s, not %" PRIu64
			 "'s",
			 cert_file, cr->self, self_id);
		goto fail;
	}
	if (ca_count(ca_file) == 0) {
		snprintf(err, errlen, "CA file %s holds no certificate",
			 ca_file);
		goto fail;
	}
	*out = cr;
	return 0;
fail:
	tls_creds_free(cr);
	return rc;
}

void tls_creds_free(struct tls_creds *cr)
{
	if (!cr)
		return;
	SSL_CTX_free(cr->ctx);
	free(cr);
}

uint64_t tls_creds_self(const struct tls_creds *cr)
{
	return cr->self;
}

int tls_creds_check_own(const struct tls_creds *cr, char *msg,
			size_t len)
{
	X509 *own = SSL_CTX_get0_certificate(cr->ctx);
	STACK_OF(X509) *chain = NULL;
	X509_STORE_CTX *x = X509_STORE_CTX_new();
	int rc = -ENOMEM, v;

	if (!x || !own) {
		snprintf(msg, len, "out of memory");
		goto out;
	}
	SSL_CTX_get0_chain_certs(cr->ctx, &chain);
	if (X509_STORE_CTX_init(x, SSL_CTX_get_cert_store(cr->ctx), own,
				chain) != 1) {
		snprintf(msg, len, "out of memory");
		goto out;
	}
	rc = 0;
	if (X509_verify_cert(x) != 1) {
		v = X509_STORE_CTX_get_error(x);
		snprintf(msg, len, "%s", X509_verify_cert_error_string(v));
		rc = -EINVAL;
	}
out:
	ERR_clear_error();
	X509_STORE_CTX_free(x);
	return rc;
}

/* ---- A connection --------------------------------------------------------- */

static void conn_free_maybe(struct tls_conn *c)
{
	if (c->handles)
		return;
	SSL_free(c->ssl); /* and its BIOs; NULL when plain */
	free(c);
}

static void tcp_closed(uv_handle_t *h)
{
	struct tls_conn *c = h->data;

	free(h);
	c->tcp = NULL;
	c->handles--;
	if (!c->told) {
		c->told = true;
		if (c->ops.closed)
			c->ops.closed(c->ops.data, c, c->why);
	}
	conn_free_maybe(c);
}

static void timer_closed(uv_handle_t *h)
{
	struct tls_conn *c = h->data;

	c->handles--;
	conn_free_maybe(c);
}

/* Close for a reason (logged by the caller); why is a static string. */
static void shut(struct tls_conn *c, const char *why)
{
	if (c->closing)
		return;
	c->closing = true;
	c->why = why;
	uv_close((uv_handle_t *)&c->timer, timer_closed);
	uv_close((uv_handle_t *)c->tcp, tcp_closed);
}

struct wreq {
	uv_write_t req;
	struct tls_conn *c;
	size_t len;
	char data[];
};

static void written(uv_write_t *w, int status)
{
	struct wreq *r = (struct wreq *)w;
	struct tls_conn *c = r->c;

	c->queued -= r->len;
	free(r);
	if (status < 0 && !c->closing) {
		say(&c->ops, 6, "%s: write: %s", c->peer, uv_strerror(status));
		shut(c, "write error");
	}
	if (c->above && c->queued < TLS_LOW_WATER && !c->closing) {
		c->above = false;
		if (c->ops.drained)
			c->ops.drained(c->ops.data, c);
	}
}

/* Send what OpenSSL has for the network. */
static int flush(struct tls_conn *c)
{
	size_t pending;

	while (!c->closing && (pending = BIO_ctrl_pending(c->wbio)) > 0) {
		struct wreq *r = malloc(sizeof(*r) + pending);
		uv_buf_t b;
		int n;

		if (!r) {
			shut(c, "out of memory");
			return -ENOMEM;
		}
		n = BIO_read(c->wbio, r->data, (int)pending);
		if (n <= 0) {
			free(r);
			break;
		}
		r->c = c;
		r->len = (size_t)n;
		b = uv_buf_init(r->data, (unsigned)n);
		if (uv_write(&r->req, (uv_stream_t *)c->tcp, &b, 1, written)) {
			free(r);
			shut(c, "write error");
			return -EIO;
		}
		c->queued += (size_t)n;
		if (c->queued > TLS_HIGH_WATER)
			c->above = true;
	}
	return 0;
}

/* Queue bytes for the socket as they are (plain), copied. */
static int send_plain(struct tls_conn *c, const void *buf, size_t len)
{
	struct wreq *r = malloc(sizeof(*r) + len);
	uv_buf_t b;

	if (!r) {
		shut(c, "out of memory");
		return -ENOMEM;
	}
	memcpy(r->data, buf, len);
	r->c = c;
	r->len = len;
	b = uv_buf_init(r->data, (unsigned)len);
	if (uv_write(&r->req, (uv_stream_t *)c->tcp, &b, 1, written)) {
		free(r);
		shut(c, "write error");
		return -EIO;
	}
	c->queued += len;
	if (c->queued > TLS_HIGH_WATER)
		c->above = true;
	return 0;
}

static void failed(struct tls_conn *c, const char *why_close);

static void deliver(struct tls_conn *c)
{
	char buf[16384];
	int n;

	while (!c->closing && c->ready) {
		n = SSL_read(c->ssl, buf, sizeof(buf));
		if (n > 0) {
			c->ops.recv(c->ops.data, c, buf, (size_t)n);
			continue;
		}
		switch (SSL_get_error(c->ssl, n)) {
		case SSL_ERROR_WANT_READ:
			flush(c);
			return;
		case SSL_ERROR_ZERO_RETURN:
			shut(c, "closed by the peer");
			return;
		default:
			failed(c, "TLS error");
			return;
		}
	}
}

/* Did the handshake fail on an alert the peer sent (it refused us)? */
static bool peer_alert(void)
{
	unsigned long e = ERR_peek_error();
	int r = ERR_GET_REASON(e);

	return e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	       r >= SSL_AD_REASON_OFFSET && r < SSL_AD_REASON_OFFSET + 256;
}

/*
 * The TLS session failed (in the handshake, or just after it: a TLS 1.3
 * client learns that its certificate was refused with the first read):
 * say why, and close.
 */
static void failed(struct tls_conn *c, const char *why_close)
{
	long v = SSL_get_verify_result(c->ssl);
	unsigned long e = ERR_peek_error();
	char why[256];

	if (v == X509_V_OK && ERR_GET_LIB(e) == ERR_LIB_SSL &&
	    ERR_GET_REASON(e) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
		/* OpenSSL kept no detail */
		ERR_clear_error();
		refusal(c, "unverified",
			"%s: TLS handshake refused: bad certificate (it does "
			"not verify against our CA file)", c->peer);
	} else if (v != X509_V_OK)
		refusal(c, X509_verify_cert_error_string(v),
			"%s: TLS handshake refused: bad certificate (%s)",
			c->peer, X509_verify_cert_error_string(v));
	else if (peer_alert())
		refusal(c, ssl_reason(why, sizeof(why)),
			"%s: TLS handshake refused by the peer: %s (does its "
			"CA file hold the CA of this member's certificate, "
			"and is that certificate valid?)",
			c->peer, why);
	else
		refusal(c, ssl_reason(why, sizeof(why)), "%s: TLS failed: %s",
			c->peer, why);
	shut(c, why_close);
}

/* The handshake moved: done, failed, or waiting for the peer. */
static void handshake(struct tls_conn *c)
{
	int n = SSL_do_handshake(c->ssl);
	X509 *peer;
	uint64_t id;

	flush(c);
	if (n != 1) {
		int e = SSL_get_error(c->ssl, n);

		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return;
		failed(c, "handshake failed");
		return;
	}
	peer = SSL_get1_peer_certificate(c->ssl);
	id = peer ? cert_member(peer) : 0;
	X509_free(peer);
	if (!id) {
		refusal(c, "no member", "%s: refused: its certificate names "
					   "no member", c->peer);
		shut(c, "no member certificate");
		return;
	}
	if (c->expect_id && id != c->expect_id) {
		refusal(c, "wrong member",
			"%s: refused: it is member %" PRIu64 ", not %" PRIu64,
			c->peer, id, c->expect_id);
		shut(c, "wrong member");
		return;
	}
	c->ready = true;
	c->peer_id = id;
	uv_timer_stop(&c->timer);
	c->ops.ready(c->ops.data, c, id);
	deliver(c); /* data that came with the last handshake flight */
}

static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
	static char chunk[READ_CHUNK]; /* one loop thread: consumed at once */

	(void)h;
	(void)hint;
	*buf = uv_buf_init(chunk, sizeof(chunk));
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	struct tls_conn *c = s->data;

	if (c->closing)
		return;
	if (n < 0) {
		shut(c, n == UV_EOF ? "closed by the peer" : "read error");
		return;
	}
	if (n == 0)
		return;
	if (c->plain) {
		if (!c->ready) { /* before the timer said so */
			c->ready = true;
			uv_timer_stop(&c->timer);
			c->ops.ready(c->ops.data, c, 0);
		}
		if (!c->closing)
			c->ops.recv(c->ops.data, c, buf->base, (size_t)n);
		return;
	}
	if (!c->ready) {
		c->handshake_bytes += (size_t)n;
		if (c->handshake_bytes > TLS_HANDSHAKE_MAX_BYTES) {
			refusal(c, "too big",
				"%s: refused: handshake over %d bytes",
				c->peer, TLS_HANDSHAKE_MAX_BYTES);
			shut(c, "handshake too big");
			return;
		}
	}
	if (BIO_write(c->rbio, buf->base, (int)n) != (int)n) {
		shut(c, "out of memory");
		return;
	}
	if (!c->ready)
		handshake(c);
	else
		deliver(c);
}

static void timed_out(uv_timer_t *t)
{
	struct tls_conn *c = t->data;

	if (c->plain && !c->ready && !c->closing) {
		c->ready = true; /* insecure: nothing to prove */
		c->ops.ready(c->ops.data, c, 0);
		return;
	}
	if (c->ready || c->closing)
		return;
	refusal(c, "timeout", "%s: refused: handshake timeout (%d ms)",
		c->peer, TLS_HANDSHAKE_TIMEOUT_MS);
	shut(c, "handshake timeout");
}

static void free_handle(uv_handle_t *h)
{
	free(h);
}

int tls_conn_start(uv_loop_t *loop, struct tls_creds *cr, uv_tcp_t *tcp,
		   bool server, uint64_t expect_id, const char *peer_name,
		   const struct tls_conn_ops *ops, struct tls_conn **out)
{
	struct tls_conn *c = calloc(1, sizeof(*c));

	if (c && !cr) {
		c->plain = true;
	} else if (c) {
		c->ssl = SSL_new(cr->ctx);
		c->cr = cr;
	}
	if (c && c->plain) {
		/* nothing to set up */
	} else if (c && c->ssl) {
		c->rbio = BIO_new(BIO_s_mem());
		c->wbio = BIO_new(BIO_s_mem());
	}
	if (!c || (!c->plain && (!c->ssl || !c->rbio || !c->wbio))) {
		if (c) {
			BIO_free(c->rbio);
			BIO_free(c->wbio);
			SSL_free(c->ssl);
			free(c);
		}
		uv_close((uv_handle_t *)tcp, free_handle);
		return -ENOMEM;
	}
	if (!c->plain) {
		SSL_set_bio(c->ssl, c->rbio, c->wbio);
		if (server)
			SSL_set_accept_state(c->ssl);
		else
			SSL_set_connect_state(c->ssl);
	}
	c->tcp = tcp;
	c->server = server;
	c->ops = *ops;
	c->expect_id = expect_id;
	snprintf(c->peer, sizeof(c->peer), "%s", peer_name ? peer_name : "?");
	tcp->data = c;
	uv_timer_init(loop, &c->timer);
	c->timer.data = c;
	c->handles = 2;
	uv_timer_start(&c->timer, timed_out,
		       c->plain ? 0 : TLS_HANDSHAKE_TIMEOUT_MS, 0);
	uv_tcp_nodelay(tcp, 1);
	c->reading = uv_read_start((uv_stream_t *)tcp, alloc_cb, read_cb) == 0;
	if (!c->reading) {
		shut(c, "read error");
	} else if (!server && !c->plain) {
		handshake(c); /* the client speaks first */
	}
	*out = c;
	return 0;
}

int tls_conn_write(struct tls_conn *c, const void *buf, size_t len)
{
	int n;

	if (c->closing || !c->ready)
		return -ENOTCONN;
	if (c->plain)
		return len ? send_plain(c, buf, len) : 0;
	while (len > 0) {
		n = SSL_write(c->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
		if (n <= 0) {
			shut(c, "TLS error");
			return -EIO;
		}
		buf = (const char *)buf + n;
		len -= (size_t)n;
	}
	return flush(c);
}

size_t tls_conn_queued(const struct tls_conn *c)
{
	return c->queued;
}

void tls_conn_pause(struct tls_conn *c, bool paused)
{
	if (c->closing || c->paused == paused)
		return;
	c->paused = paused;
	if (paused)
		uv_read_stop((uv_stream_t *)c->tcp);
	else
		uv_read_start((uv_stream_t *)c->tcp, alloc_cb, read_cb);
}

void tls_conn_close(struct tls_conn *c)
{
	if (c->closing)
		return;
	if (c->ready && !c->plain) {
		SSL_shutdown(c->ssl);
		flush(c);
	}
	shut(c, NULL);
}

const char *tls_conn_peer(const struct tls_conn *c)
{
	return c->peer;
}

void tls_peer_name(uv_tcp_t *tcp, char *peer, size_t plen, char *source,
		   size_t slen)
{
	struct sockaddr_storage ss;
	int len = sizeof(ss);
	char ip[64] = "?";
	int port = 0;

	if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &len) == 0) {
		if (ss.ss_family == AF_INET) {
			uv_ip4_name((struct sockaddr_in *)&ss, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			uv_ip6_name((struct sockaddr_in6 *)&ss, ip, sizeof(ip));
			port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
		}
	}
	snprintf(peer, plen, "%s:%d", ip, port);
	snprintf(source, slen, "%s", ip);
}
