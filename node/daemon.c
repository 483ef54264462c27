/*
 * node/daemon.c: the daemon's life (node/daemon.h): opening the store,
 * the modules and the log in the order applying entries needs them;
 * catching up, then creating this host's tree if it has none, and only
 * then serving, so that no client ever sees a state older than what was
 * acknowledged before a crash; the tick; signals; a planned stop that
 * answers what was read; freeing everything.
 */
#include "node/daemon.h"
#include "node/cluster.h"
#include "node/dispatch.h"
#include "node/domains.h"
#include "node/peers.h"
#include "node/submit.h"
#include "node/trace.h"
#include "node/watch.h"
#include "node/apply.h"
#include "node/datadir.h"
#include "node/hashkey.h"
#include "node/listen.h"
#include "node/notify.h"
#include "node/snapshot.h"
#include "node/standalone.h"
#include "consensus/tls.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "consensus/sm.h"

/* The daemon's own timers and signals, and what the log borrows. */
struct lifecycle {
	uv_timer_t tick;  /* resends, readiness, query time-outs */
	uv_timer_t drain; /* stopping: waiting for requests in flight */
	uint64_t drain_deadline_ms;
	uv_signal_t sig[3]; /* SIGTERM, SIGINT, SIGHUP */
	/* borrowed by the log until it is closed (repl_open()) */
	struct repl_fsm fsm;
	struct repl_config repl_cfg;
	char raft_dir[PATH_MAX];
};

/*
 * repl_fsm.disk_failed: an fsync of the log failed. Exit at once (no
 * orderly close: it would write to a disk that lost writes); clients see
 * their connections drop and nothing unacknowledged was answered.
 */
static void disk_failed(void *data, const char *msg)
{
	(void)data;
	log_fatal("%s", msg);
}

static void detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	dup2(fd, STDERR_FILENO);
	if (fd > 2)
		close(fd);
}

static void write_pid_file(struct daemon *d)
{
	char text[32];
	int rc;

	if (!d->cfg.pid_file)
		return;
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	rc = datadir_write_file(d->cfg.pid_file, text);
	if (rc)
		log_fatal("cannot write pid file %s: %s", d->cfg.pid_file,
		      strerror(-rc));
}

/* ---- Start-up --------------------------------------------------------- */

static void serve(struct daemon *d)
{
	listen_start(d);
	domains_start(d);
	write_pid_file(d);
	d->serving = true;
	log_msg(5,
		"ready: host %s, %zu nodes, applied index %" PRIu64
		", sockets %s and %s, data in %s",
		d->host, store_node_count(d->store, d->host),
		store_applied_index(d->store), d->cfg.socket_path[0],
		d->cfg.socket_path[1], d->cfg.data_dir);
	if (d->cfg.output_pid) {
		printf("%ld\n", (long)getpid());
		fflush(stdout);
	}
	if (!d->cfg.foreground) {
		log_parent_ready();
		detach_stdio();
	}
	notify_ready(d);
}

static void host_ready(struct daemon *d, void *arg, int result)
{
	if (d->stopping)
		return;
	if (result)
		log_fatal("cannot create the tree of host %s: %s", d->host,
		      strerror(-result));
	log_msg(5, "created the tree of host %s", d->host);
	serve(d);
}

static void member_recorded(struct daemon *d, void *arg, int result)
{
	if (result && !d->stopping)
		log_msg(4, "cannot record this member's addresses: %s",
			strerror(-result));
}

/* This member as the cluster table should list it (NULL if alone). */
static bool self_member(struct daemon *d, struct store_member *m)
{
	const struct member_cfg *self = &d->cfg.cluster.self;

	if (!d->cfg.cluster.enabled)
		return false;
	m->id = d->member_id;
	m->name = d->host;
	m->raft_address = self->raft_address;
	m->peer_address = self->peer_address;
	return true;
}

/*
 * Caught up: every entry committed before this start is applied. Make sure
 * this host has a tree (and, in a cluster, that the table has its current
 * addresses), then serve.
 */
static void caught_up(struct daemon *d, int status)
{
	struct sm_origin o;
	const struct store_member *known;
	struct store_member me;
	bool has_me = self_member(d, &me);
	void *buf;
	size_t len;
	int rc;

	if (status)
		log_fatal("not caught up with the log within %u ms: giving up",
		      d->cfg.ready_timeout_ms);
	standalone_caught_up(d);
	if (d->serving) {
		/* a cold start served its own tree meanwhile */
		log_msg(5, "quorum formed: caught up with the log at applied "
			   "index %" PRIu64 "; serving normally once this "
			   "member's standalone writes are in the log",
			repl_last_applied(d->repl));
		return;
	}
	submit_seq_follow_log(d);
	if (store_host_exists(d->store, d->host)) {
		known = store_member_by_id(d->store, d->member_id);
		if (has_me && (!known || strcmp(known->name, me.name) ||
			       strcmp(known->raft_address, me.raft_address) ||
			       strcmp(known->peer_address, me.peer_address))) {
			o = submit_own_origin(d);
			if (!sm_entry_member(&o, &me, false, &buf, &len))
				submit_entry(d, NULL, NULL, buf, len, o.seq,
					      member_recorded, NULL);
		}
		serve(d);
		return;
	}
	o = submit_own_origin(d);
	rc = sm_entry_host_init(&o, has_me ? &me : NULL, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq, host_ready,
				   NULL);
	if (rc)
		log_fatal("cannot create the tree of host %s: %s", d->host,
		      strerror(-rc));
}

/* Not caught up after cold-start-wait: serve the own tree locally? */
static bool cold_start(struct daemon *d)
{
	if (d->stopping || !standalone_cold_start(d))
		return false;
	serve(d);
	return true;
}

static void on_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t now = uv_now(d->loop);

	standalone_tick(d, now);
	submit_tick(d, now);
	cluster_tick(d, now);
	domains_tick(d, now);
	notify_tick(d, now);
}

/* ---- Shutdown ----------------------------------------------------------- */

static void pool_closed(void *arg)
{
	struct daemon *d = arg;

	uv_stop(d->loop);
}

static void repl_closed(void *arg)
{
	struct daemon *d = arg;

	d->repl = NULL;
	conn_pool_close(d->pool, pool_closed, d);
}

static void peers_closed(void *arg)
{
	struct daemon *d = arg;

	if (d->repl)
		repl_close(d->repl, repl_closed, d);
	else
		conn_pool_close(d->pool, pool_closed, d);
}

static void close_handle(uv_handle_t *h, void *arg)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

/* Close everything: connections, then peers, then the log. */
static void shutdown_finish(struct daemon *d)
{
	int i;

	uv_timer_stop(&d->life->drain);
	domains_close(d);
	conn_pool_close_all(d->pool, "daemon stopping");
	/* what the log did not apply in time is not answered (closed
	 * connections take no reply; guests' requests stay in their ring
	 * journals): free it, and let its connections go */
	submit_abort_all(d, -EIO);
	for (i = 0; i < 3; i++)
		uv_signal_stop(&d->life->sig[i]);
	uv_timer_stop(&d->life->tick);
	submit_close(d);
	/* peers first (no more forwarded entries), then the log */
	cluster_close(d, peers_closed, d);
}

static bool drained(struct daemon *d)
{
	return submit_idle(d) && !conn_pool_busy(d->pool);
}

static void on_drain(uv_timer_t *t)
{
	struct daemon *d = t->data;

	if (drained(d)) {
		log_msg(6, "every request in flight answered");
	} else if (uv_now(d->loop) >= d->life->drain_deadline_ms) {
		log_msg(5, "stopping with requests unanswered: guests' are "
			   "kept in their ring journals for the next start");
	} else {
		return;
	}
	shutdown_finish(d);
}

/*
 * A planned stop: read nothing new, but answer what was read (writes in
 * the log are waited for) for up to 2 s; what is left of guests' requests
 * stays in their ring journals for the next start. A second signal does
 * not wait.
 */
static void shutdown_daemon(struct daemon *d, const char *why)
{
	if (d->stopping) {
		if (uv_is_active((uv_handle_t *)&d->life->drain)) {
			log_msg(5, "stopping now: %s again", why);
			shutdown_finish(d);
		}
		return;
	}
	d->stopping = true;
	log_msg(5, "stopping: %s", why);
	notify_stopping(d, why);
	listen_stop(d);
	if (!d->serving || drained(d)) {
		shutdown_finish(d);
		return;
	}
	d->life->drain_deadline_ms = uv_now(d->loop) + 2000;
	uv_timer_start(&d->life->drain, on_drain, 5, 5);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct daemon *d = s->data;

	if (signum == SIGHUP) {
		trace_open(d->trace); /* logrotate */
		return;
	}
	shutdown_daemon(d, signum == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void daemon_free(struct daemon *d)
{
	listen_free(d);
	domains_free(d);
	standalone_free(d);
	notify_free(d);
	submit_free(d);
	cluster_free(d);
	peers_free(d);
	trace_free(d->trace);
	store_free(d->store);
	tls_creds_free(d->tls);
	watches_free(d->watches);
	free(d->host);
	free(d->cfg.socket_path[0]);
	free(d->cfg.socket_path[1]);
	free(d->life);
	free((char *)d->cfg.pid_file);
	free((char *)d->cfg.trace_file);
	free((char *)d->cfg.log_file);
	free((char *)d->cfg.data_dir);
	free((char *)d->cfg.run_dir);
	free((char *)d->cfg.config_file);
	free((char *)d->cfg.host_name);
	free((char *)d->cfg.socket_ro_group);
	free((char *)d->cfg.restore_file);
}

/* The log's configuration: this member, its directory, the cluster's. */
static struct repl_member *repl_config_of(struct daemon *d,
					  struct repl_config *rc,
					  const char *raft_dir)
{
	const struct cluster_cfg *cl = &d->cfg.cluster;
	struct repl_member *members;
	bool in_initial = false;
	size_t i;

	rc->id = d->member_id;
	rc->data_dir = raft_dir;
	rc->snapshot_threshold = d->cfg.snapshot_threshold;
	rc->snapshot_trailing = d->cfg.snapshot_trailing;
	members = calloc(cl->n_members ? cl->n_members : 1, sizeof(*members));
	if (!members)
		log_fatal("out of memory");
	if (!cl->enabled)
		return members;
	for (i = 0; i < cl->n_members; i++) {
		members[i].id = cl->members[i].id;
		members[i].address = cl->members[i].raft_address;
		if (cl->members[i].id == d->member_id)
			in_initial = true;
	}
	rc->address = cl->self.raft_address;
	rc->members = members;
	rc->n_members = cl->n_members;
	/* not among the initial members: wait to be added */
	rc->join = !in_initial;
	rc->tls = d->tls;
	rc->force_new_cluster = d->cfg.force_new_cluster;
	rc->election_timeout_ms = cl->election_timeout_ms;
	rc->heartbeat_timeout_ms = cl->heartbeat_timeout_ms;
	log_msg(6, "member %" PRIu64 " of a cluster: raft %s, peers %s%s",
		d->member_id, cl->self.raft_address, cl->self.peer_address,
		d->cfg.restore_file || d->cfg.force_new_cluster
			? " (the only voter of a new cluster)"
		: in_initial ? "" : " (joining: waiting to be added)");
	return members;
}

/*
 * A cluster member's TLS credentials: refused at start if a file is
 * missing, damaged, not this member's, or its key readable by others. A
 * member configured insecure says so at every start.
 */
static void open_credentials(struct daemon *d)
{
	const struct cluster_cfg *cl = &d->cfg.cluster;
	char err[512];

	if (!cl->ca_file) {
		log_msg(3, "INSECURE: this cluster runs without TLS (insecure "
			   "= true): anyone who reaches its Raft and peer "
			   "ports can read and rewrite every host's tree; for "
			   "tests only");
		return;
	}
	if (tls_creds_load(cl->ca_file, cl->cert_file, cl->key_file,
			   d->member_id, &d->tls, err, sizeof(err)))
		log_fatal("TLS credentials: %s", err);
	if (tls_creds_check_own(d->tls, err, sizeof(err)))
		log_msg(3, "TLS: this member's certificate %s does not verify "
			   "against its CA file %s (%s): its peers will refuse "
			   "it", cl->cert_file, cl->ca_file, err);
	log_msg(6, "TLS: member %" PRIu64 "'s certificate %s, CA %s",
		d->member_id, cl->cert_file, cl->ca_file);
}

/* The store, the modules, then the log (which may apply entries and
 * restore a snapshot at once, reaching the modules). */
static void open_all(struct daemon *d)
{
	struct lifecycle *l = d->life;
	const struct repl_config defaults = {REPL_CONFIG_DEFAULTS};
	const struct repl_fsm fsm = {
		.data = d,
		.apply = apply_entry,
		.snapshot_pin = snapshot_pin,
		.snapshot_write = snapshot_write,
		.snapshot_unpin = snapshot_unpin,
		.restore = snapshot_restore,
		.log = log_cb,
		.disk_failed = disk_failed,
	};
	uint8_t hash_key[STORE_HASH_KEY_LEN];
	struct conn_handler client;
	struct repl_member *members;
	int rc;

	if (d->cfg.cluster.enabled)
		open_credentials(d);
	hashkey_store(d->host, d->member_id, hash_key);
	d->store = store_new_keyed(hash_key);
	d->watches = watches_new();
	d->pool = conn_pool_new(d->loop);
	if (!d->store || !d->watches || !d->pool)
		log_fatal("out of memory");
	dispatch_handler(d, &client);
	if (peers_open(d) || submit_open(d) || cluster_open(d) ||
	    listen_open(d, &client))
		log_fatal("out of memory");
	rc = domains_open(d, &client);
	if (rc)
		log_fatal("cannot use ring backend %s: %s",
			  d->cfg.ring_backend, strerror(-rc));
	snprintf(l->raft_dir, sizeof(l->raft_dir), "%s/raft", d->cfg.data_dir);
	rc = datadir_mkdir_p(l->raft_dir, 0700);
	if (rc)
		log_fatal("cannot create %s: %s", l->raft_dir, strerror(-rc));
	l->fsm = fsm;
	l->repl_cfg = defaults;
	members = repl_config_of(d, &l->repl_cfg, l->raft_dir);
	rc = repl_open(d->loop, &l->repl_cfg, &l->fsm, &d->repl);
	free(members);
	l->repl_cfg.members = NULL; /* copied by the log */
	l->repl_cfg.n_members = 0;
	if (rc == -ENOENT && d->cfg.force_new_cluster)
		log_fatal("--force-new-cluster: %s holds no log to recover",
			  l->raft_dir);
	if (rc)
		log_fatal("cannot open the log in %s: %s", l->raft_dir,
			  strerror(-rc));
	rc = peers_listen(d);
	if (rc)
		log_fatal("cannot listen for peers on %s: %s",
			  d->cfg.cluster.self.peer_address, strerror(-rc));
}

int daemon_run(struct daemon *d)
{
	static const int signums[3] = {SIGTERM, SIGINT, SIGHUP};
	struct lifecycle *l = calloc(1, sizeof(*l));
	uv_loop_t loop;
	int i, rc;

	if (!l)
		log_fatal("out of memory");
	d->life = l;
	trace_open(d->trace);
	uv_loop_init(&loop);
	d->loop = &loop;
	for (i = 0; i < 3; i++) {
		uv_signal_init(&loop, &l->sig[i]);
		l->sig[i].data = d;
		uv_signal_start(&l->sig[i], on_signal, signums[i]);
	}
	if (notify_open(d))
		log_fatal("out of memory");
	open_all(d);
	uv_timer_init(&loop, &l->tick);
	l->tick.data = d;
	uv_timer_init(&loop, &l->drain);
	l->drain.data = d;
	uv_timer_start(&l->tick, on_tick, 10, 10);
	rc = standalone_open(d);
	if (rc)
		log_fatal("cannot take up the standalone journal in %s: %s",
			  d->cfg.data_dir, strerror(-rc));
	if (cluster_wait_ready(d, caught_up, cold_start))
		log_fatal("out of memory starting to catch up");

	uv_run(&loop, UV_RUN_DEFAULT);

	/* Orderly exit: close what is left and free everything. */
	uv_walk(&loop, close_handle, NULL);
	while (uv_run(&loop, UV_RUN_NOWAIT))
		;
	if (uv_loop_close(&loop))
		log_msg(4, "the event loop still had open handles at exit");
	if (d->cfg.pid_file && d->serving)
		unlink(d->cfg.pid_file);
	log_msg(5, "stopped");
	daemon_free(d);
	return 0;
}
