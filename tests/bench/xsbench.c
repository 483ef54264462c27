/*
 * tests/bench/xsbench.c: a load generator for xenstore daemons. Speaks the
 * xenstore wire protocol (wire/xs_msg.h) to any daemon's Unix socket (ours,
 * or Xen's through ../shared/reference/refd), or etcd's v3 JSON gateway
 * over HTTP/1.1 for the put workloads, and reports ops/s and latency
 * percentiles per workload. deploy/bench.sh drives it.
 *
 * This file: the options, --help, the workload table and one run of each
 * workload; bench_int.h lists the other files.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tests/bench/bench_int.h"
#include "version.h"

#define BENCH_MAX_CONNS 1024
#define BENCH_MAX_DEPTH 1024

static void usage(FILE *f)
{
	fprintf(f,
"Usage: xsbench [options] WORKLOAD...\n"
"\n"
"Load generator for xenstore daemons: runs each WORKLOAD in turn on fresh\n"
"connections and prints ops/s and latency percentiles (p50, p99, p999)\n"
"of each. The socket is privileged (dom0); every workload works under\n"
"--prefix (default /bench), except boot and populate, which write where a\n"
"toolstack would (/local/domain/N, /vm/UUID, /libxl/N). What a workload\n"
"created is removed after it (untimed) unless --keep.\n"
"\n"
"Workloads (an op is one request unless said otherwise):\n"
"  read        READ of --keys existing keys, round robin\n"
"  write-one   WRITE of a new key, all under one parent\n"
"  write-many  WRITE of a new key, spread over --parents parents\n"
"  overwrite   WRITE of an existing key (--keys of them)\n"
"  dir100      DIRECTORY of a node with 100 children\n"
"  txn         read-modify-write transactions: increment one of\n"
"              --counters shared counters (start, read, write, commit;\n"
"              retried on EAGAIN). An op is one committed increment;\n"
"              reports commits/s and the EAGAIN rate, and checks that the\n"
"              counters add up to the commits\n"
"  boot        what libxl writes to create a PV domain with a console,\n"
"              two vbds and two vifs (transactions, permissions, watches,\n"
"              backend/frontend/libxl dirs, hotplug handshake), for\n"
"              --domains domains; an op is one domain (reqs/s also shown).\n"
"              INTRODUCE is left out: there is no real guest\n"
"  populate    --domains domains of --nodes leaves each, written in\n"
"              transactions of 100 leaves (an op is one transaction);\n"
"              kept (for scale tests) unless --cleanup\n"
"  watched     overwrite while one more connection has --watches watches\n"
"              on \"/\" and reads none of its events: every write queues\n"
"              that many events for it (set up untimed)\n"
"  probe       sequential WRITEs of one key for --duration, tolerating\n"
"              errors: reports the longest time without a successful\n"
"              write (max_gap_ms), for failover measurements\n"
"  fsync       4 KiB pwrite + fdatasync at successive offsets of a file\n"
"              in --dir (no daemon): the disk's durable-write floor\n"
"  rtt         ping-pong of a 48-byte message over a Unix socket pair\n"
"              with a child process (no daemon): one loopback round trip\n"
"\n"
"Options:\n"
"  -s, --socket PATH     daemon socket (default $XENSTORED_PATH, else\n"
"                        /var/run/xenstored/socket)\n"
"  -e, --etcd ADDRS      drive etcd instead: comma-separated HOST:PORT of\n"
"                        its client URLs; PUTs via the v3 JSON gateway\n"
"                        (POST /v3/kv/put, keep-alive, pipelined);\n"
"                        write-one, write-many and overwrite only\n"
"  -c, --conns N         connections (default 1)\n"
"  -d, --depth N         requests in flight per connection (default 1;\n"
"                        txn and boot are sequential per connection)\n"
"  -t, --duration SEC    stop starting ops after SEC seconds (default 5;\n"
"                        fractions allowed)\n"
"  -n, --ops N           stop after N ops (default: no limit; fsync 200,\n"
"                        rtt 10000); whichever of -t/-n comes first\n"
"  -k, --keys N          keys of read and overwrite (default 1000)\n"
"  --parents N           parents of write-many (default 100)\n"
"  --counters N          shared counters of txn (default 4)\n"
"  --domains N           domains of boot and populate (default 100)\n"
"  --domid-base N        first domid of boot and populate (default 1)\n"
"  --nodes N             leaves per domain of populate (default 1000)\n"
"  --watches N           watches of watched's other client (default 20000)\n"
"  --value-size N        bytes per written value (default 16)\n"
"  --prefix PATH         subtree of the workloads (default /bench)\n"
"  --dir DIR             directory of the fsync workload (default .)\n"
"  --label TEXT          copied into the output (e.g. the daemon's name)\n"
"  --keep                do not remove what a workload created\n"
"  --cleanup             remove populate's tree too\n"
"  --json                one JSON object per workload, one per line\n"
"  --version             print the version (xenstored-raft's) and exit\n"
"  -h, --help            this help\n"
"\n"
"JSON fields: workload, label, conns, depth, ops, seconds, ops_per_s,\n"
"p50_us, p99_us, p999_us, max_us, reqs, reqs_per_s, errors, first_error,\n"
"and where they apply commits, eagain, eagain_rate, verified (txn),\n"
"nodes (populate), max_gap_ms (probe).\n"
"\n"
"Exit status: 0 every workload ran (errors are counted, not fatal), 1 a\n"
"workload could not run (connection refused or lost, protocol error,\n"
"daemon silent for 60 s), 2 bad usage.\n");
}

/* Every workload: name, etcd_ok, setup, cleanup, next, reply (bench_int.h). */
static const struct workload workloads[] = {
	{"read", false, kv_keys_setup, kv_subtree_cleanup, kv_read_next, kv_simple_reply},
	{"write-one", true, kv_write_one_setup, kv_subtree_cleanup, kv_write_one_next,
	 kv_simple_reply},
	{"write-many", true, kv_write_many_setup, kv_subtree_cleanup, kv_write_many_next,
	 kv_simple_reply},
	{"overwrite", true, kv_keys_setup, kv_subtree_cleanup, kv_overwrite_next,
	 kv_simple_reply},
	{"dir100", false, kv_dir_setup, kv_subtree_cleanup, kv_dir_next, kv_dir_reply},
	{"txn", false, txn_setup, txn_cleanup, txn_next, txn_reply},
	{"boot", false, boot_setup, boot_cleanup, script_next, script_reply},
	{"populate", false, populate_setup, populate_cleanup, script_next, script_reply},
	{"watched", false, watched_setup, watched_cleanup, kv_overwrite_next,
	 kv_simple_reply},
	{"probe", true, NULL, kv_subtree_cleanup, kv_probe_next, kv_probe_reply},
	{"fsync", true, NULL, NULL, NULL, NULL},
	{"rtt", true, NULL, NULL, NULL, NULL},
};

static void run_workload(struct bench *b, const struct workload *w)
{
	unsigned conns = b->conns, depth = b->depth;

	b->w = w;
	b->nlat = 0;
	b->reqs = b->errors = b->commits = b->eagain = 0;
	b->first_error[0] = '\0';
	b->max_gap_ns = 0;
	b->verified = -1;
	b->nodes_made = 0;
	b->next_unit = 0;
	b->ops_limit = b->ops_opt;
	snprintf(b->run_tag, sizeof(b->run_tag), "%d-%llu", (int)getpid(),
		 (unsigned long long)(bench_now_ns() / 1000 % 1000000000ull));
	if (!strcmp(w->name, "fsync")) {
		floors_fsync(b);
		stats_report(b, w, 1, 1);
		return;
	}
	if (!strcmp(w->name, "rtt")) {
		floors_rtt(b);
		stats_report(b, w, 1, 1);
		return;
	}
	if (b->proto == PROTO_ETCD && !w->etcd_ok)
		bench_die("%s: not a workload for etcd (puts only)", w->name);
	/* one request at a time per connection, as their clients do */
	if (!strcmp(w->name, "txn") || !strcmp(w->name, "boot") ||
	    !strcmp(w->name, "probe"))
		depth = 1;
	if (!strcmp(w->name, "populate") && depth < 2)
		depth = 32;
	if (w->setup)
		w->setup(b);
	b->nlat = 0;
	b->reqs = b->errors = b->commits = b->eagain = 0;
	b->first_error[0] = '\0';
	b->what = w->name;
	engine_run(b, conns, depth);
	if (w->cleanup) {
		uint64_t errs = b->errors, reqs = b->reqs;
		uint64_t t0 = b->t_start, t1 = b->t_last;
		char first[sizeof(b->first_error)];

		memcpy(first, b->first_error, sizeof(first));
		w->cleanup(b);
		b->errors = errs;
		b->reqs = reqs;
		b->t_start = t0;
		b->t_last = t1;
		memcpy(b->first_error, first, sizeof(first));
	}
	stats_report(b, w, conns, depth);
}

static unsigned parse_uint(const char *opt, const char *s, unsigned lo, unsigned hi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "xsbench: %s: %s is not a number in [%u, %u]\n", opt,
			s, lo, hi);
		exit(2);
	}
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	enum { O_PARENTS = 256, O_COUNTERS, O_DOMAINS, O_DOMID_BASE, O_NODES,
	       O_VALUE_SIZE, O_PREFIX, O_DIR, O_LABEL, O_KEEP, O_CLEANUP, O_JSON,
	       O_WATCHES, O_VERSION };
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"etcd", required_argument, NULL, 'e'},
		{"conns", required_argument, NULL, 'c'},
		{"depth", required_argument, NULL, 'd'},
		{"duration", required_argument, NULL, 't'},
		{"ops", required_argument, NULL, 'n'},
		{"keys", required_argument, NULL, 'k'},
		{"parents", required_argument, NULL, O_PARENTS},
		{"counters", required_argument, NULL, O_COUNTERS},
		{"domains", required_argument, NULL, O_DOMAINS},
		{"domid-base", required_argument, NULL, O_DOMID_BASE},
		{"nodes", required_argument, NULL, O_NODES},
		{"watches", required_argument, NULL, O_WATCHES},
		{"value-size", required_argument, NULL, O_VALUE_SIZE},
		{"prefix", required_argument, NULL, O_PREFIX},
		{"dir", required_argument, NULL, O_DIR},
		{"label", required_argument, NULL, O_LABEL},
		{"keep", no_argument, NULL, O_KEEP},
		{"cleanup", no_argument, NULL, O_CLEANUP},
		{"json", no_argument, NULL, O_JSON},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, O_VERSION},
		{NULL, 0, NULL, 0},
	};
	struct bench b = {
		.conns = 1, .depth = 1, .duration_s = 5, .keys = 1000,
		.parents = 100, .counters = 4, .domains = 100, .domid_base = 1,
		.nodes = 1000, .value_size = 16, .prefix = "/bench", .dir = ".",
		.label = "", .epfd = -1, .watches = 20000, .watcher_fd = -1,
	};
	const char *etcd = NULL;
	char *etcd_copy = NULL, *s;
	int opt, i;

	while ((opt = getopt_long(argc, argv, "s:e:c:d:t:n:k:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 's': b.socket = optarg; break;
		case 'e': etcd = optarg; break;
		case 'c': b.conns = parse_uint("--conns", optarg, 1, BENCH_MAX_CONNS); break;
		case 'd': b.depth = parse_uint("--depth", optarg, 1, BENCH_MAX_DEPTH); break;
		case 't': {
			char *end;

			b.duration_s = strtod(optarg, &end);
			if (*end || end == optarg || !(b.duration_s > 0) || b.duration_s > 86400) {
				fprintf(stderr, "xsbench: --duration: %s is not a number of seconds\n",
					optarg);
				return 2;
			}
			break;
		}
		case 'n': b.ops_opt = parse_uint("--ops", optarg, 1, UINT_MAX); break;
		case 'k': b.keys = parse_uint("--keys", optarg, 1, 10000000); break;
		case O_PARENTS: b.parents = parse_uint("--parents", optarg, 1, 1000000); break;
		case O_COUNTERS: b.counters = parse_uint("--counters", optarg, 1, 100000); break;
		case O_DOMAINS: b.domains = parse_uint("--domains", optarg, 1, 32000); break;
		case O_DOMID_BASE: b.domid_base = parse_uint("--domid-base", optarg, 1, 32000); break;
		case O_NODES: b.nodes = parse_uint("--nodes", optarg, 1, 10000000); break;
		case O_WATCHES: b.watches = parse_uint("--watches", optarg, 1, 1000000); break;
		case O_VALUE_SIZE: b.value_size = parse_uint("--value-size", optarg, 1, 4000); break;
		case O_PREFIX: b.prefix = optarg; break;
		case O_DIR: b.dir = optarg; break;
		case O_LABEL: b.label = optarg; break;
		case O_KEEP: b.keep = true; break;
		case O_CLEANUP: b.cleanup_pop = true; break;
		case O_JSON: b.json = true; break;
		case 'h': usage(stdout); return 0;
		case O_VERSION:
			printf("xsbench (%s) %s\n", XSR_PROJECT_NAME, XSR_VERSION);
			return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return 2;
	}
	if (b.prefix[0] != '/' || strlen(b.prefix) > 100) {
		fprintf(stderr, "xsbench: --prefix must be an absolute path (<= 100 bytes)\n");
		return 2;
	}
	for (i = optind; i < argc; i++) {
		size_t k;

		for (k = 0; k < sizeof(workloads) / sizeof(workloads[0]); k++)
			if (!strcmp(argv[i], workloads[k].name))
				break;
		if (k == sizeof(workloads) / sizeof(workloads[0])) {
			fprintf(stderr, "xsbench: unknown workload %s (see --help)\n", argv[i]);
			return 2;
		}
	}
	if (etcd) {
		char *tok, *save = NULL;

		etcd_copy = strdup(etcd);
		s = etcd_copy;

		b.proto = PROTO_ETCD;
		for (tok = strtok_r(s, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
			b.etcd_addrs = bench_xrealloc(b.etcd_addrs, (b.n_etcd + 1) * sizeof(char *));
			b.etcd_addrs[b.n_etcd++] = tok;
		}
		if (!b.n_etcd) {
			fprintf(stderr, "xsbench: --etcd needs HOST:PORT\n");
			return 2;
		}
	}
	if (!b.socket)
		b.socket = getenv("XENSTORED_PATH");
	if (!b.socket)
		b.socket = "/var/run/xenstored/socket";
	signal(SIGPIPE, SIG_IGN);
	for (i = optind; i < argc; i++) {
		size_t k;

		for (k = 0; strcmp(argv[i], workloads[k].name); k++)
			;
		run_workload(&b, &workloads[k]);
	}
	trace_free(&b.batch);
	free(b.lat);
	free(b.etcd_addrs);
	free(etcd_copy);
	return 0;
}
