/*
 * tests/peer_forger.c: a misbehaving member, built from the project's own
 * peer channel (consensus/peer.c, TLS and all) and entry codec
 * (consensus/sm_entry.c), for tests/cluster/test_network.py.
 *
 * It stands in for a member that is down, with that member's own
 * certificate, and forwards one entry it builds as told: a write of PATH
 * = VALUE to HOST's tree, a no-op naming HOST, or a record of member
 * MEMBER, with ORIGIN and
 * SEQ as given, whatever its own id, and PREV as the entry the leader
 * must have before it (Forward.prev_seq, 0 by default). It sends the
 * entry to the first member named, follows the leader hints of refusals,
 * and reports:
 *
 *   exit 0, "accepted"       the leader took it (no refusal for 3 s)
 *   exit 3, "refused"        the leader refused it as not ours (EPERM)
 *   exit 5, "out of order"   the leader lacks its PREV (EILSEQ)
 *   exit 4, "no leader"      nobody took it within the time limit
 *   exit 2                   bad usage or credentials
 *
 *   peer_forger --ca CA --cert CERT --key KEY --self ID --listen ADDR
 *               --member ID=ADDR [--member ...] --origin ID --seq N
 *               [--prev N] (--write HOST PATH VALUE | --noop HOST |
 *                           --record ID NAME)
 */
#include "consensus/peer.h"
#include "consensus/sm.h"
#include "consensus/tls.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire/peer.pb-c.h"

#define QUIET_MS 3000	 /* no refusal from the leader for this long */
#define GIVE_UP_MS 20000 /* no leader found */

struct forger {
	uv_loop_t *loop;
	struct peer *peer;
	uv_timer_t quiet, give_up;
	void *entry;
	size_t len;
	uint64_t seq, prev, to;
	int verdict; /* -1 while undecided */
};

static void finish(struct forger *f, int verdict, const char *what)
{
	if (f->verdict >= 0)
		return;
	f->verdict = verdict;
	printf("%s\n", what);
	fflush(stdout);
	uv_stop(f->loop);
}

static void on_quiet(uv_timer_t *t)
{
	finish(t->data, 0, "accepted");
}

static void send_to(struct forger *f, uint64_t to);

static void on_retry(uv_timer_t *t)
{
	struct forger *f = t->data;

	send_to(f, f->to);
}

static void on_give_up(uv_timer_t *t)
{
	finish(t->data, 4, "no leader");
}

static void send_to(struct forger *f, uint64_t to)
{
	Xsr__PeerMsg m = XSR__PEER_MSG__INIT;
	Xsr__Forward fw = XSR__FORWARD__INIT;
	uint8_t *buf;
	size_t len;

	fw.seq = f->seq;
	fw.prev_seq = f->prev;
	fw.entry.data = f->entry;
	fw.entry.len = f->len;
	m.m_case = XSR__PEER_MSG__M_FORWARD;
	m.forward = &fw;
	len = xsr__peer_msg__get_packed_size(&m);
	buf = malloc(len);
	if (!buf)
		abort();
	xsr__peer_msg__pack(&m, buf);
	f->to = to;
	if (peer_send(f->peer, to, buf, len))
		fprintf(stderr, "peer_forger: cannot queue for member %" PRIu64
				"\n", to);
	free(buf);
	uv_timer_start(&f->quiet, on_quiet, QUIET_MS, 0);
}

static void recv_msg(void *data, uint64_t from, const void *body, size_t len)
{
	struct forger *f = data;
	Xsr__PeerMsg *m = xsr__peer_msg__unpack(NULL, len, body);
	const Xsr__ForwardNack *n;

	if (!m)
		return;
	if (m->m_case == XSR__PEER_MSG__M_FORWARD_NACK &&
	    m->forward_nack->seq == f->seq) {
		n = m->forward_nack;
		fprintf(stderr, "peer_forger: member %" PRIu64
				" refused: %s (leader %" PRIu64 ")\n",
			from, strerror(-n->status), n->leader);
		if (n->status == -EPERM)
			finish(f, 3, "refused");
		else if (n->status == -EILSEQ)
			finish(f, 5, "out of order");
		else if (n->leader && n->leader != from)
			send_to(f, n->leader);
		else /* no leader yet: ask again soon */
			uv_timer_start(&f->quiet, on_retry, 500, 0);
	}
	xsr__peer_msg__free_unpacked(m, NULL);
}

static void say(void *data, int level, const char *msg)
{
	(void)data;
	fprintf(stderr, "peer_forger: <%d> %s\n", level, msg);
}

static void closed(void *arg)
{
	(void)arg;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: peer_forger --ca CA --cert CERT --key KEY --self ID "
		"--listen ADDR\n"
		"       --member ID=ADDR [--member ...] --origin ID --seq N\n"
		"       [--prev N] (--write HOST PATH VALUE | --noop HOST |\n"
		"                   --record ID NAME)\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"ca", required_argument, NULL, 'a'},
		{"cert", required_argument, NULL, 'c'},
		{"key", required_argument, NULL, 'k'},
		{"self", required_argument, NULL, 's'},
		{"listen", required_argument, NULL, 'l'},
		{"member", required_argument, NULL, 'm'},
		{"origin", required_argument, NULL, 'o'},
		{"seq", required_argument, NULL, 'q'},
		{"prev", required_argument, NULL, 'p'},
		{"write", no_argument, NULL, 'w'},
		{"record", no_argument, NULL, 'r'},
		{"noop", no_argument, NULL, 'n'},
		{NULL, 0, NULL, 0},
	};
	const char *ca = NULL, *cert = NULL, *key = NULL, *listen = NULL;
	uint64_t self = 0, first = 0, ids[16];
	const char *addrs[16];
	unsigned nmembers = 0, i;
	struct sm_origin o = {0};
	struct store_member rec = {0};
	struct tls_creds *cr;
	struct forger f = {.verdict = -1};
	uint64_t prev = 0;
	struct peer_handler h = {.data = &f, .recv = recv_msg, .log = say};
	char err[256], *eq;
	int c, mode = 0, rc;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'a': ca = optarg; break;
		case 'c': cert = optarg; break;
		case 'k': key = optarg; break;
		case 's': self = strtoull(optarg, NULL, 10); break;
		case 'l': listen = optarg; break;
		case 'm':
			eq = strchr(optarg, '=');
			if (!eq || nmembers == 16)
				usage();
			*eq = '\0';
			ids[nmembers] = strtoull(optarg, NULL, 10);
			addrs[nmembers++] = eq + 1;
			break;
		case 'o': o.member = strtoull(optarg, NULL, 10); break;
		case 'q': o.seq = strtoull(optarg, NULL, 10); break;
		case 'p': prev = strtoull(optarg, NULL, 10); break;
		case 'w': mode = 'w'; break;
		case 'r': mode = 'r'; break;
		case 'n': mode = 'n'; break;
		default: usage();
		}
	}
	if (!ca || !cert || !key || !self || !listen || !nmembers ||
	    !o.member || !o.seq || !mode ||
	    argc - optind != (mode == 'w' ? 3 : mode == 'n' ? 1 : 2))
		usage();
	if (mode == 'n') {
		o.host = argv[optind];
		rc = sm_entry_noop(&o, &f.entry, &f.len);
	} else if (mode == 'w') {
		o.host = argv[optind];
		rc = sm_entry_write(&o, argv[optind + 1], argv[optind + 2],
				    strlen(argv[optind + 2]), &f.entry, &f.len);
	} else {
		rec.id = strtoull(argv[optind], NULL, 10);
		rec.name = argv[optind + 1];
		rec.raft_address = "127.0.0.1:1";
		rec.peer_address = "127.0.0.1:1";
		o.host = rec.name;
		rc = sm_entry_member(&o, &rec, false, &f.entry, &f.len);
	}
	if (rc) {
		fprintf(stderr, "peer_forger: cannot build the entry: %s\n",
			strerror(-rc));
		return 2;
	}
	if (tls_creds_load(ca, cert, key, self, &cr, err, sizeof(err))) {
		fprintf(stderr, "peer_forger: %s\n", err);
		return 2;
	}
	f.seq = o.seq;
	f.prev = prev;
	f.loop = uv_default_loop();
	rc = peer_open(f.loop, self, listen, cr, &h, &f.peer);
	if (rc) {
		fprintf(stderr, "peer_forger: cannot listen on %s: %s\n",
			listen, strerror(-rc));
		return 2;
	}
	for (i = 0; i < nmembers; i++)
		peer_set_address(f.peer, ids[i], addrs[i]);
	first = ids[0];
	uv_timer_init(f.loop, &f.quiet);
	uv_timer_init(f.loop, &f.give_up);
	f.quiet.data = f.give_up.data = &f;
	uv_timer_start(&f.give_up, on_give_up, GIVE_UP_MS, 0);
	send_to(&f, first);
	uv_run(f.loop, UV_RUN_DEFAULT);
	uv_close((uv_handle_t *)&f.quiet, NULL);
	uv_close((uv_handle_t *)&f.give_up, NULL);
	peer_close(f.peer, closed, NULL);
	uv_run(f.loop, UV_RUN_DEFAULT);
	uv_loop_close(f.loop);
	tls_creds_free(cr);
	free(f.entry);
	return f.verdict;
}
