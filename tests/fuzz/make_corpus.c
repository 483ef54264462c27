/*
 * tests/fuzz/make_corpus.c: writes the fuzz targets' seed corpus
 * (tests/fuzz/corpus/<target>/) from the real encoders: xenstore messages
 * (wire/xs_msg.h), log entries (sm_entry_*), a snapshot of the store they
 * build (sm_snapshot_encode), peer frames (peer_frame_put) and Raft
 * handshakes. Usage: make_corpus DIR. The output is deterministic.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ring/ring.h"

#include "consensus/peer.h"
#include "consensus/sm.h"
#include "tests/fuzz/fuzz_store.h"
#include "wire/le.h"
#include "wire/xs_msg.h"

static const char *out_dir;

/* A growing byte buffer. */
struct bytes {
	uint8_t *p;
	size_t len, cap;
};

static void put(struct bytes *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2;
		b->p = realloc(b->p, b->cap);
		if (!b->p)
			abort();
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void put_byte(struct bytes *b, uint8_t v)
{
	put(b, &v, 1);
}

static void put_int(struct bytes *b, uint64_t v, unsigned n)
{
	uint8_t le[8];

	put_le(le, v, n);
	put(b, le, n);
}

/* Write b as DIR/target/name and empty it. */
static void save(const char *target, const char *name, struct bytes *b)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	if (mkdir(path, 0755) != 0 && errno != EEXIST) {
		perror(path);
		exit(1);
	}
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wb");
	if (!f || fwrite(b->p, 1, b->len, f) != b->len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	b->len = 0;
}

/* ---- socket and ring: xenstore messages ------------------------------ */

/* One message: type, request id, transaction id, payload (n bytes). */
static void msg(struct bytes *b, uint32_t type, uint32_t req_id, uint32_t tx,
		const void *payload, size_t n)
{
	struct wire_hdr h = {type, req_id, tx, (uint32_t)n};
	uint8_t raw[WIRE_HDR_SIZE];

	wire_hdr_encode(&h, raw);
	put(b, raw, sizeof(raw));
	put(b, payload, n);
}

#define MSG(b, type, id, tx, lit) msg(b, type, id, tx, lit, sizeof(lit))
#define MSG0(b, type, id, tx, lit) msg(b, type, id, tx, lit, sizeof(lit) - 1)
#define LIT(s) s, sizeof(s)

/* What a client says in a session (the e2e tests' requests). */
static void session(struct bytes *b)
{
	static const struct {
		uint32_t type, tx;
		const char *payload;
		size_t n;
	} reqs[] = {
		{WIRE_WRITE, 0, LIT("/local/domain/0/name\0Domain-0")},
		{WIRE_READ, 0, LIT("/local/domain/0/name")},
		{WIRE_DIRECTORY, 0, LIT("/local/domain")},
		{WIRE_WATCH, 0, LIT("/local/domain/0\0tok")},
		{WIRE_TRANSACTION_START, 0, LIT("")},
		{WIRE_MKDIR, 7, LIT("/tool/x")},
		{WIRE_TRANSACTION_END, 7, LIT("T")},
		{WIRE_SET_PERMS, 0, LIT("/tool/x\0n0\0r5")},
		{WIRE_GET_PERMS, 0, LIT("/tool/x")},
		{WIRE_RM, 0, LIT("/tool/x")},
		{WIRE_UNWATCH, 0, LIT("/local/domain/0\0tok")},
		{WIRE_ERROR, 0, "", 0},
		{99, 0, "", 0}, /* no such type */
	};
	static char big[WIRE_PAYLOAD_MAX];
	uint32_t i;

	for (i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++)
		msg(b, reqs[i].type, i + 1, reqs[i].tx, reqs[i].payload,
		    reqs[i].n);
	memset(big, 'v', sizeof(big));
	msg(b, WIRE_READ, i + 1, 0, big, sizeof(big)); /* reply: E2BIG */
}

static void socket_corpus(void)
{
	/* write sizes, limits, a small socket buffer (fuzz_socket.c) */
	static const uint8_t modes[] = {0, 5, 10, 15, 0x13, 0x18};
	struct bytes b = {0};
	size_t i;

	for (i = 0; i < sizeof(modes); i++) {
		uint8_t mode = modes[i];
		char name[32];

		put_byte(&b, mode);
		session(&b);
		snprintf(name, sizeof(name), "session-%u", mode);
		save("socket", name, &b);
	}
	/* replies beyond the socket's buffer: written in parts */
	put_byte(&b, 0x13);
	for (i = 0; i < 10; i++) {
		static char value[2000];

		memset(value, 'r', sizeof(value));
		msg(&b, WIRE_READ, (uint32_t)i, 0, value, sizeof(value));
	}
	save("socket", "big-replies", &b);
	put_byte(&b, 4);
	MSG(&b, WIRE_READ, 1, 0, "/a");
	MSG0(&b, WIRE_RELEASE, 2, 0, "1");
	MSG(&b, WIRE_READ, 3, 0, "/never/read");
	save("socket", "release-closes", &b);
	put_byte(&b, 4);
	{
		struct wire_hdr h = {WIRE_WRITE, 1, 0, WIRE_PAYLOAD_MAX + 1};
		uint8_t raw[WIRE_HDR_SIZE];

		wire_hdr_encode(&h, raw);
		put(&b, raw, sizeof(raw));
		put(&b, "/x", 2);
	}
	save("socket", "too-long", &b);
	free(b.p);
}

/* Ring steps (fuzz_ring.c). */
enum { R_WRITE, R_PROD, R_READ_ALL, R_CONS, R_CONN, R_SCRIBBLE, R_RESET,
       R_RESTART };

/* The guest writes the bytes of m, in writes of at most 256. */
static void ring_write(struct bytes *b, const struct bytes *m)
{
	size_t off, n;

	for (off = 0; off < m->len; off += n) {
		n = m->len - off < 256 ? m->len - off : 256;
		put_byte(b, R_WRITE);
		put_byte(b, (uint8_t)(n - 1));
		put(b, m->p + off, n);
		put_byte(b, R_READ_ALL);
	}
}

static void ring_corpus(void)
{
	struct bytes b = {0}, m = {0};
	int i;

	session(&m);
	put_byte(&b, 3); /* 20 outstanding */
	ring_write(&b, &m);
	save("ring", "session", &b);

	/* the daemon dies in the middle and reads the journal again */
	put_byte(&b, 2);
	m.len = 0;
	MSG(&m, WIRE_WRITE, 1, 0, "/local/domain/5/a\0b");
	MSG(&m, WIRE_READ, 2, 0, "/local/domain/5/a");
	ring_write(&b, &m);
	put_byte(&b, R_RESTART);
	put_byte(&b, R_READ_ALL);
	save("ring", "restart", &b);

	/* the guest asks to reconnect; the daemon resets the ring */
	put_byte(&b, 0);
	ring_write(&b, &m);
	put_byte(&b, R_CONN);
	put_byte(&b, XENSTORE_RECONNECT);
	put_byte(&b, R_RESET);
	ring_write(&b, &m);
	save("ring", "reconnect", &b);

	/* indexes wrap around the ring */
	put_byte(&b, 7); /* watch events dropped past 64 bytes */
	for (i = 0; i < 40; i++) {
		m.len = 0;
		MSG(&m, WIRE_WATCH, (uint32_t)i, 0, "/local/domain/5\0wrap");
		ring_write(&b, &m);
	}
	save("ring", "wrap", &b);

	/* a hostile index */
	put_byte(&b, 0);
	put_byte(&b, R_PROD);
	put_int(&b, 0x80000000u, 4);
	put_byte(&b, R_CONS);
	put_int(&b, 5000, 4);
	save("ring", "bad-index", &b);
	free(m.p);
	free(b.p);
}

/* ---- apply and snapshot: log entries ----------------------------------- */

/*
 * A scenario: entries framed for fuzz_apply.c, applied as it applies them
 * to a store of its own, so that each one means what it says (a commit's
 * generations, a ring session's number).
 */
struct scenario {
	struct bytes all, one;
	struct store *st;
	uint64_t index;
	struct sm_origin o;
};

static void scenario_init(struct scenario *s)
{
	memset(s, 0, sizeof(*s));
	s->st = store_new_keyed(fuzz_store_key);
	s->index = 1;
	if (!s->st || store_host_init(s->st, "h1", s->index) != 0)
		abort();
	s->o.member = 1;
	s->o.seq = 1; /* as submit.c numbers them, from 1 */
	s->o.host = "h1";
}

/* Take the entry the last sm_entry_*() made; also alone as one-<name>. */
static void add(struct scenario *s, const char *name, int rc, void *buf,
		size_t len)
{
	struct sm_result res;
	char file[64];

	if (rc != 0)
		abort();
	sm_apply(s->st, ++s->index, buf, len, &res);
	if (res.fatal || !res.result_known || res.result != 0) {
		fprintf(stderr, "make_corpus: entry %s: %d\n", name,
			res.result);
		exit(1);
	}
	sm_result_clear(&res);
	put_int(&s->all, len, 2);
	put(&s->all, buf, len);
	if (name) {
		put_int(&s->one, len, 2);
		put(&s->one, buf, len);
		snprintf(file, sizeof(file), "one-%s", name);
		save("apply", file, &s->one);
	}
	free(buf);
	s->o.seq++;
}

#define ADD(s, name, call)                                                     \
	do {                                                                   \
		void *buf_;                                                    \
		size_t len_;                                                   \
		int rc_ = sm_entry_##call;                                     \
		add(s, name, rc_, buf_, len_);                                 \
	} while (0)

/* A transaction's commit, as dispatch_txn.c builds it. */
static void add_commit(struct scenario *s)
{
	struct store_caller root = {.privileged = true,
				    .target = STORE_NO_TARGET,
				    .quota = STORE_QUOTA_INIT};
	struct store_txn *tx = store_txn_new(s->st, "h1");
	struct store_commit cm;

	if (!tx ||
	    store_write(s->st, "h1", tx, &root, 0, "/tool/tx/a", "1", 1,
			NULL) != 0 ||
	    store_rm(s->st, "h1", tx, &root, 0, "/tool/gone", NULL) != 0 ||
	    store_txn_export(tx, &cm) != 0)
		abort();
	ADD(s, "commit", commit(&s->o, &cm, &buf_, &len_));
	store_commit_release(&cm);
	store_txn_free(tx);
}

static void save_snapshot(const char *name, struct store *st)
{
	struct store_pin *pin = store_pin(st);
	struct bytes b = {0};
	void *buf;
	size_t len;

	if (!pin || sm_snapshot_encode(pin, &buf, &len) != 0)
		abort();
	store_unpin(pin);
	put(&b, buf, len);
	save("snapshot", name, &b);
	free(buf);
	free(b.p);
}

static void apply_corpus(void)
{
	struct store_caller guest = {.domid = 3,
				     .target = STORE_NO_TARGET,
				     .quota = STORE_QUOTA_INIT};
	struct store_perm perms[2] = {{.domid = 3}, {.domid = 0,
						     .access = STORE_PERM_READ}};
	struct store_member h2 = {2, "h2", "127.0.0.1:9002", "127.0.0.1:9102"};
	struct store_member h3 = {3, "h3", "127.0.0.1:9003", "127.0.0.1:9103"};
	const char *subtrees[] = {"/tool/dom/3"};
	struct store_move mv = {.src_host = "h1", .dst_host = "h2",
				.src_domid = 3, .dst_domid = 5,
				.subtrees = subtrees, .nsubtrees = 1};
	struct scenario s;
	uint64_t ring_id;

	scenario_init(&s);
	ADD(&s, "write", write(&s.o, "/local/domain/0/name", "Domain-0", 8,
			       &buf_, &len_));
	ADD(&s, "mkdir", mkdir(&s.o, "/tool/gone", &buf_, &len_));
	ADD(&s, NULL, write(&s.o, "/local/domain/3/data", "", 0, &buf_, &len_));
	ADD(&s, NULL,
	    set_perms(&s.o, "/local/domain/3", perms, 2, &buf_, &len_));
	ADD(&s, "set_perms",
	    set_perms(&s.o, "/local/domain/3/data", perms, 2, &buf_, &len_));
	ADD(&s, NULL, mkdir(&s.o, "/tool/dom/3", &buf_, &len_));
	add_commit(&s);
	ring_id = s.index + 1;
	ADD(&s, "introduce",
	    introduce(&s.o, 3, 0xfeff, 1003, true, false, 0, &buf_,
		      &len_));
	ADD(&s, NULL,
	    introduce(&s.o, 4, 0xfefd, 1004, true, false, 0, &buf_, &len_));
	ADD(&s, "set_target", set_target(&s.o, 4, 3, &buf_, &len_));
	ADD(&s, "watch",
	    watch(&s.o, 3, "data", "tok", 128, false, &buf_, &len_));
	s.o.caller = &guest; /* the guest's own request from its ring */
	s.o.ring_id = ring_id;
	s.o.ring_seq = 1;
	ADD(&s, "ring_write",
	    write(&s.o, "/local/domain/3/data/x", "1", 1, &buf_, &len_));
	s.o.caller = NULL;
	s.o.ring_id = s.o.ring_seq = 0;
	ADD(&s, "quota", quota(&s.o, 3, 0, 50, &buf_, &len_));
	ADD(&s, "host_quota", quota(&s.o, STORE_QUOTA_HOST, 1, 4096, &buf_,
				    &len_));
	ADD(&s, "unwatch",
	    watch(&s.o, 3, "data", "tok", 128, true, &buf_, &len_));
	ADD(&s, NULL, watch(&s.o, 3, "@releaseDomain", "r", 128, false, &buf_,
			    &len_));
	ADD(&s, "reset_watches", reset_watches(&s.o, 3, &buf_, &len_));
	ADD(&s, "ring_reset", ring_reset(&s.o, 3, 0, &buf_, &len_));
	ADD(&s, "rm", rm(&s.o, "/local/domain/0/name", &buf_, &len_));
	s.o.host = "h2";
	ADD(&s, "host_init", host_init(&s.o, &h2, &buf_, &len_));
	s.o.host = "h1";
	ADD(&s, "member", member(&s.o, &h3, false, &buf_, &len_));
	ADD(&s, "member_remove", member(&s.o, &h3, true, &buf_, &len_));
	ADD(&s, "verify", verify(&s.o, 42, &buf_, &len_));
	ADD(&s, "noop", noop(&s.o, &buf_, &len_));
	ADD(&s, "move_domain", move_domain(&s.o, &mv, &buf_, &len_));
	ADD(&s, NULL,
	    introduce(&s.o, 6, 0xfefe, 1006, true, false, 0, &buf_, &len_));
	ADD(&s, "domain_gone", domain_gone(&s.o, 6, &buf_, &len_));
	/* a suspend request, a new domain with the same vm inheriting, a
	 * resume (store_domain_inherit()) */
	ADD(&s, NULL, write(&s.o, "/local/domain/8/vm", "/vm/u1", 6, &buf_,
			    &len_));
	ADD(&s, NULL,
	    introduce(&s.o, 8, 0xfefb, 1008, true, false, 0, &buf_, &len_));
	ADD(&s, "suspend", write(&s.o, "/local/domain/8/control/shutdown",
				 "suspend", 7, &buf_, &len_));
	ADD(&s, NULL, write(&s.o, "/local/domain/9/vm", "/vm/u1", 6, &buf_,
			    &len_));
	ADD(&s, "introduce_inherit",
	    introduce(&s.o, 9, 0xfefc, 1009, true, true, 1000, &buf_, &len_));
	ADD(&s, "resume", resume(&s.o, 8, &buf_, &len_));
	save("apply", "all", &s.all);

	/* the snapshot of what they built, and of a store with a host */
	save_snapshot("all", s.st);
	store_free(s.st);
	scenario_init(&s);
	save_snapshot("host", s.st);
	store_free(s.st);
	free(s.all.p);
	free(s.one.p);
}

/* ---- peer frames ------------------------------------------------------- */

static void frame(struct bytes *b, const char *body)
{
	size_t n = strlen(body);
	uint8_t *f = malloc(PEER_FRAME_HDR + n);

	peer_frame_put(2, body, n, f);
	put(b, f, PEER_FRAME_HDR + n);
	free(f);
}

static void peer_corpus(void)
{
	struct bytes b = {0};

	frame(&b, "forward: write /local/domain/0/x");
	frame(&b, "");
	save("peer", "frames", &b);
	frame(&b, "split");
	b.len -= 2;
	save("peer", "partial", &b);
	free(b.p);
}

/* ---- the Raft handshake ------------------------------------------------ */

/* libraft's plaintext handshake (uv_tcp_connect.c): protocol, id,
 * address: what an old member or a stranger sends to a TLS port. */
static void raft_hello(struct bytes *b, uint64_t id, const char *address)
{
	size_t n = (strlen(address) + 1 + 7) / 8 * 8;
	uint8_t pad[8] = {0};

	put_int(b, 1, 8);
	put_int(b, id, 8);
	put_int(b, n, 8);
	put(b, address, strlen(address));
	put(b, pad, n - strlen(address));
}

static void handshake_corpus(void)
{
	struct bytes b = {0};
	uint8_t junk[48];
	size_t i;

	for (i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(i * 37 + 11);
	/* a stranger: libraft's plaintext handshake, 48 bytes of junk, a
	 * TLS record header that claims too much */
	put_byte(&b, 0);
	raft_hello(&b, 7, "127.0.0.1:9007");
	save("handshake", "accept-plaintext", &b);
	put_byte(&b, 0);
	put(&b, junk, sizeof(junk));
	save("handshake", "accept-junk48", &b);
	put_byte(&b, 0);
	put(&b, "\x16\x03\x01\xff\xff\x01\x00\xff\xfb", 9);
	save("handshake", "accept-record-too-big", &b);
	/* we dial: the other end answers junk */
	put_byte(&b, 1);
	put(&b, junk, sizeof(junk));
	save("handshake", "connect-junk48", &b);
	free(b.p);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: make_corpus DIR\n");
		return 2;
	}
	out_dir = argv[1];
	socket_corpus();
	ring_corpus();
	apply_corpus();
	peer_corpus();
	handshake_corpus();
	return 0;
}
