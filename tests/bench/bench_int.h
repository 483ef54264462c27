/*
 * tests/bench/bench_int.h: what the files of xsbench share. Not a public
 * header: xsbench is one program, deploy/bench.sh runs it.
 *
 *   xsbench.c   options, --help, the workload table, one run per workload
 *   util.c      clock, fatal errors, allocation, byte buffers, numbers
 *   trace.c     traces: precomputed lists of requests
 *   conn.c      connections: the xenstore wire protocol, etcd's HTTP
 *   engine.c    the loop that runs a workload on N connections
 *   batch.c     untimed setup and cleanup: a trace on one connection
 *   stats.c     latencies and errors; the table line or JSON per workload
 *   kv.c        read, write-one, write-many, overwrite, dir100, probe
 *   txn.c       txn: read-modify-write of shared counters
 *   script.c    boot and populate: one trace per op, on a connection
 *   boot.c      boot: what libxl writes to create a PV domain
 *   populate.c  populate: domains of leaves, 100 per transaction
 *   watched.c   watched: overwrite while another client has watches
 *   floors.c    fsync and rtt: the physical floors, no daemon
 *
 * A workload that cannot run (connection refused or lost, protocol error,
 * a failed setup) ends the program: bench_die, exit status 1. Error
 * replies during a run are counted (stats_note_error) and reported.
 */
#ifndef XSR_TESTS_BENCH_BENCH_INT_H
#define XSR_TESTS_BENCH_BENCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BENCH_PATH_MAX 256

/* ------------------------------------------------------------------ */
/* util.c                                                               */

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/* "xsbench: <message>" on stderr, then exit status 1. */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* malloc/realloc that die rather than return NULL (0 bytes asks for 1). */
void *bench_xmalloc(size_t n);
void *bench_xrealloc(void *p, size_t n);

/* A byte buffer: data in p[off..len). Zero-initialised is empty. */
struct buf {
	char *p;
	size_t off, len, cap;
};

/* Room for `more` bytes after p[len] (moves the data to the front first). */
void buf_reserve(struct buf *b, size_t more);
void buf_put(struct buf *b, const void *d, size_t n);
void buf_free(struct buf *b);

/* A decimal number in a reply's payload (not NUL-terminated for READ). */
long bench_body_num(const char *body, uint32_t len);

/* ------------------------------------------------------------------ */
/* trace.c: a precomputed list of requests (boot, populate, batch)      */

#define STEP_TX 0x1        /* inside the current transaction */
#define STEP_OK_ENOENT 0x2 /* ENOENT is an expected answer */
#define STEP_PIPE 0x4      /* may go while earlier steps are unanswered */

struct step {
	uint32_t type;
	uint32_t flags;
	uint32_t off, len; /* payload in trace.arena */
};

struct trace {
	struct step *steps;
	unsigned n, cap;
	struct buf arena;
};

/* Empty the trace, keeping its memory. */
void trace_reset(struct trace *t);
void trace_free(struct trace *t);

/* Append a step whose payload is the given NUL-separated strings; the last
 * one is followed by a NUL unless `value_last` (WRITE's value has none). */
void trace_add(struct trace *t, uint32_t type, uint32_t flags,
	       bool value_last, int nstr, ...);

/* WRITE path = val. */
void trace_write(struct trace *t, uint32_t fl, const char *path, const char *val);

/* TRANSACTION_START if `start`, else TRANSACTION_END "T" (commit). */
void trace_txn(struct trace *t, bool start);

/* ------------------------------------------------------------------ */
/* The state of a run                                                   */

enum proto { PROTO_XS, PROTO_ETCD };

/* A request in flight; a connection has --depth of them. */
struct slot {
	uint64_t sent_ns;
	uint64_t op_ns; /* when the op this request belongs to began */
	uint32_t tag;   /* the workload's */
	bool busy;
};

/* Per-connection state of the scripted workloads (txn, boot, populate). */
struct script {
	struct trace tr;
	bool active;    /* a unit (op) is under way */
	unsigned step;  /* next step of tr to send */
	unsigned pending;
	unsigned txn_begin;
	uint32_t tx;
	uint64_t op_ns;
	unsigned unit;  /* domain index (boot) or group (populate) */
	int state;      /* txn */
	bool abort;     /* txn: end the transaction with "F" */
	unsigned counter;
	long value;
};

struct conn {
	int fd, id;
	bool blocking;
	struct buf out, in;
	struct slot *slots;
	uint32_t *free_ids;
	unsigned nfree;
	uint32_t *fifo; /* HTTP: slots in send order */
	unsigned fifo_head, fifo_n;
	unsigned inflight;
	bool done;
	bool want_out;
	uint64_t seq;
	uint64_t last_ok_ns; /* probe */
	struct script s;
};

struct bench;

struct workload {
	const char *name;
	bool etcd_ok;
	void (*setup)(struct bench *b);   /* untimed, before */
	void (*cleanup)(struct bench *b); /* untimed, after */
	/* 1 emitted a request, 0 must wait for replies, -1 no more ops */
	int (*next)(struct bench *b, struct conn *c);
	void (*reply)(struct bench *b, struct conn *c, const struct slot *sl,
		      uint32_t type, const char *body, uint32_t len);
};

struct bench {
	/* options */
	const char *socket;
	char **etcd_addrs;
	unsigned n_etcd;
	unsigned conns, depth;
	double duration_s;
	uint64_t ops_opt;
	unsigned keys, parents, counters, domains, domid_base, nodes;
	unsigned watches; /* watched: the other client's watches on "/" */
	unsigned value_size;
	const char *prefix, *dir, *label;
	bool keep, cleanup_pop, json;

	/* the current run */
	const struct workload *w;
	enum proto proto;
	struct conn *cs;
	unsigned nconns, ndepth;
	int epfd;
	uint64_t t_start, t_last, deadline;
	uint64_t ops_limit, ops_begun;
	bool stopping, measured;
	uint64_t *lat;
	size_t nlat, caplat;
	uint64_t reqs, errors, commits, eagain;
	char first_error[200];
	uint64_t max_gap_ns;
	int verified; /* -1 not checked, 0 no, 1 yes */
	uint64_t nodes_made;
	unsigned next_unit; /* boot, populate: the next domain or group */
	const char *what; /* setup/cleanup phase's name, for errors */

	/* setup/cleanup requests: a trace replayed pipelined */
	struct trace batch;
	unsigned batch_next;
	bool batch_strict;
	long *ctr_values; /* txn: counters read back */
	int watcher_fd; /* watched: the client that does not read, or -1 */
	char run_tag[32];
};

/* ------------------------------------------------------------------ */
/* conn.c                                                               */

/* Connect nconns connections with depth slots each to b->socket (or
 * b->etcd_addrs); one connection blocks, more go on an epoll set. */
void conns_open(struct bench *b, unsigned nconns, unsigned depth);
void conns_close(struct bench *b);

/* Queue a xenstore request; op_ns 0 means "the op begins now". The reply
 * goes to b->w->reply with the slot's tag. */
void conn_xs_send(struct bench *b, struct conn *c, uint32_t type, uint32_t tx,
		  const char *payload, uint32_t len, uint64_t op_ns, uint32_t tag);

/* A request whose payload is one path (READ, DIRECTORY, MKDIR, RM). */
void conn_xs_send_path(struct bench *b, struct conn *c, uint32_t type,
		       const char *path, uint64_t op_ns, uint32_t tag);

/* A put: xenstore WRITE or etcd PUT of path = value. */
void conn_emit_write(struct bench *b, struct conn *c, const char *path,
		     const char *val, uint64_t op_ns, uint32_t tag);

/* Remove a subtree: xenstore RM, or etcd deleterange of the prefix. */
void conn_emit_rm(struct bench *b, struct conn *c, const char *path, uint32_t tag);

/* Write what is queued; without blocking, waits for EPOLLOUT if it must. */
void conn_flush(struct bench *b, struct conn *c);

/* Read what is there (blocking connections: wait up to 1 s) and hand every
 * whole reply to b->w->reply. */
void conn_read(struct bench *b, struct conn *c);

/* ------------------------------------------------------------------ */
/* engine.c, batch.c                                                    */

/* May an op begin? Counts it if so; false once -t or -n is reached. */
bool engine_op_begin(struct bench *b);

/* Run b->w on fresh connections until every connection is done. */
void engine_run(struct bench *b, unsigned nconns, unsigned depth);

/* Replay b->batch (then empty it) under the name `what`; errors are fatal
 * if strict, else counted. */
void batch_run(struct bench *b, const char *what, bool strict);

/* ------------------------------------------------------------------ */
/* stats.c                                                              */

/* Count an error; the first one is kept, as "what path: err". */
void stats_note_error(struct bench *b, const char *what, const char *path,
		      const char *err);

/* An op that began at op_ns is done now: one latency sample. */
void stats_op_done(struct bench *b, uint64_t op_ns);

/* The table line (or JSON object, --json) of workload w on stdout. */
void stats_report(struct bench *b, const struct workload *w, unsigned conns,
		  unsigned depth);

/* ------------------------------------------------------------------ */
/* The workloads: callbacks of the table in xsbench.c                  */

/* kv.c: out = prefix/workload-tag[/<fmt>]; dies if it does not fit. */
void kv_path(struct bench *b, char *out, size_t n, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
/* kv.c: a value of --value-size bytes ending in the number n. */
void kv_value(struct bench *b, char *v, uint64_t n);

void kv_keys_setup(struct bench *b);
void kv_subtree_cleanup(struct bench *b);
void kv_simple_reply(struct bench *b, struct conn *c, const struct slot *sl,
		     uint32_t type, const char *body, uint32_t len);
int kv_read_next(struct bench *b, struct conn *c);
void kv_write_one_setup(struct bench *b);
int kv_write_one_next(struct bench *b, struct conn *c);
void kv_write_many_setup(struct bench *b);
int kv_write_many_next(struct bench *b, struct conn *c);
int kv_overwrite_next(struct bench *b, struct conn *c);
void kv_dir_setup(struct bench *b);
int kv_dir_next(struct bench *b, struct conn *c);
void kv_dir_reply(struct bench *b, struct conn *c, const struct slot *sl,
		  uint32_t type, const char *body, uint32_t len);
int kv_probe_next(struct bench *b, struct conn *c);
void kv_probe_reply(struct bench *b, struct conn *c, const struct slot *sl,
		    uint32_t type, const char *body, uint32_t len);

void txn_setup(struct bench *b);
int txn_next(struct bench *b, struct conn *c);
void txn_reply(struct bench *b, struct conn *c, const struct slot *sl,
	       uint32_t type, const char *body, uint32_t len);
void txn_cleanup(struct bench *b);

/* script.c: boot and populate; an op is the trace of unit b->next_unit. */
int script_next(struct bench *b, struct conn *c);
void script_reply(struct bench *b, struct conn *c, const struct slot *sl,
		  uint32_t type, const char *body, uint32_t len);

/* boot.c, populate.c: the trace of unit i (a domain, a group of leaves)
 * into t, which is reset first. */
void boot_trace(struct bench *b, struct trace *t, unsigned i);
void boot_setup(struct bench *b);
void boot_cleanup(struct bench *b);
void populate_trace(struct bench *b, struct trace *t, unsigned unit);
void populate_setup(struct bench *b);
void populate_cleanup(struct bench *b);

/* watched.c: the keys of overwrite, then a connection that sets
 * --watches watches on "/" and then reads nothing; cleanup closes it. */
void watched_setup(struct bench *b);
void watched_cleanup(struct bench *b);

/* floors.c: the fsync and rtt workloads, run whole (no engine). */
void floors_fsync(struct bench *b);
void floors_rtt(struct bench *b);

#endif
