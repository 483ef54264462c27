/*
 * node/main.c: the xenstored process: options, data directory (lock and
 * member identity), daemonizing, start-up, sockets, signals, shutdown.
 *
 * Start-up order: open the log (restoring the newest snapshot), replay it
 * up to what was there at start (bounded wait), make sure this host has a
 * tree, and only then listen: no client ever sees a state older than what
 * was acknowledged before a crash.
 */
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "node/daemon.h"
#include "node/apply.h"
#include "node/snapshot.h"
#include "node/hashkey.h"
#include "node/hostname.h"
#include "node/options.h"
#include "consensus/sm.h"

#define DEFAULT_DATA_DIR "/var/lib/xenstored"
#define DEFAULT_RUN_DIR "/var/run/xenstored"

static void fatal(struct daemon *d, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

/* Tell a waiting parent we failed, log why, and exit. */
static void fatal(struct daemon *d, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_msg(3, "%s", msg);
	if (d->ready_fd >= 0) {
		/* The parent prints it: we may have no terminal any more. */
		ssize_t rc = write(d->ready_fd, msg, strlen(msg));

		(void)rc;
		close(d->ready_fd);
	}
	_exit(1);
}

/*
 * repl_fsm.disk_failed: an fsync of the log failed. Exit at once (no
 * orderly close: it would write to a disk that lost writes); clients see
 * their connections drop and nothing unacknowledged was answered.
 */
static void disk_failed(void *data, const char *msg)
{
	fatal(data, "%s", msg);
}

/* ---- Paths and the data directory -------------------------------- */

static char *absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (!path || path[0] == '/')
		return path ? strdup(path) : NULL;
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

/* The pid recorded in a lock file, 0 if none. */
static long lock_holder(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	if (n <= 0)
		return 0;
	text[n] = '\0';
	return strtol(text, NULL, 10);
}

static bool pid_alive(long pid)
{
	char path[64], st = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	/* "pid (comm) S ...": a zombie has let go of its files */
	if (fscanf(f, "%*d (%*[^)]) %c", &st) != 1)
		st = '?';
	fclose(f);
	return st != 'Z' && st != 'X';
}

/*
 * One daemon per data directory: a second one would corrupt the log. A
 * daemon killed a moment ago may still hold the lock while the kernel
 * drains its I/O, so a restart waits for it (LOCK_WAIT_MS, polling) and
 * refuses only if the lock is still held after that. The holder writes
 * its pid into the lock file, so that the wait can say whom it waits for.
 */
#define LOCK_WAIT_MS 10000
#define LOCK_POLL_MS 50

static void lock_data_dir(struct daemon *d)
{
	char *path, text[32];
	long holder = 0;
	int fd, waited_ms = 0;

	if (asprintf(&path, "%s/lock", d->cfg.data_dir) < 0)
		fatal(d, "out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		fatal(d, "cannot open %s: %s", path, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			fatal(d, "cannot lock %s: %s", path, strerror(errno));
		if (waited_ms == 0) {
			holder = lock_holder(fd);
			log_msg(5,
				"data directory %s is locked by %s %ld: "
				"waiting up to %d s for it to exit",
				d->cfg.data_dir,
				pid_alive(holder) ? "xenstored pid"
						  : "an exiting process, pid",
				holder, LOCK_WAIT_MS / 1000);
		}
		if (waited_ms >= LOCK_WAIT_MS) {
			holder = lock_holder(fd);
			fatal(d,
			      "data directory %s is in use by another xenstored "
			      "(lock %s held by pid %ld%s for %d s)",
			      d->cfg.data_dir, path, holder,
			      pid_alive(holder) ? "" : ", not running",
			      LOCK_WAIT_MS / 1000);
		}
		usleep(LOCK_POLL_MS * 1000);
		waited_ms += LOCK_POLL_MS;
	}
	if (waited_ms)
		log_msg(5, "data directory %s: lock taken after %d ms",
			d->cfg.data_dir, waited_ms);
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, text, strlen(text), 0) < 0)
		log_msg(4, "cannot record this pid in %s: %s", path,
			strerror(errno));
	free(path);
	/* fd stays open: the lock lives as long as the process. */
}

/* Write a small file atomically (temporary file, fsync, rename). */
static int write_file_atomic(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	int fd;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text) || fsync(fd)) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		unlink(tmp);
		return -e;
	}
	close(fd);
	if (rename(tmp, path))
		return -errno;
	return 0;
}

/*
 * The member identity in DATA/identity: host name, member id, and an
 * incarnation counter bumped at every start. Sequence numbers of log
 * entries are (incarnation << 40) + n, so they keep increasing across
 * restarts (at-most-once application).
 */
static void load_identity(struct daemon *d)
{
	char path[PATH_MAX], line[256], host[128] = "", text[512];
	unsigned long long id = 1, inc = 0;
	FILE *f;
	int rc;

	/* a cluster member is who its [member] section says */
	if (d->cfg.cluster.enabled) {
		if (d->cfg.host_name &&
		    strcmp(d->cfg.host_name, d->cfg.cluster.self.name) != 0)
			fatal(d, "--host-name %s differs from the config's "
				 "[member] name %s",
			      d->cfg.host_name, d->cfg.cluster.self.name);
		free((char *)d->cfg.host_name);
		d->cfg.host_name = strdup(d->cfg.cluster.self.name);
	}
	snprintf(path, sizeof(path), "%s/identity", d->cfg.data_dir);
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "host=%127s", host) == 1)
				continue;
			if (sscanf(line, "id=%llu", &id) == 1)
				continue;
			sscanf(line, "incarnation=%llu", &inc);
		}
		fclose(f);
		if (!host[0])
			fatal(d, "%s names no host: the data directory is "
				 "damaged",
			      path);
		if (d->cfg.host_name && strcmp(d->cfg.host_name, host) != 0)
			fatal(d,
			      "data directory %s belongs to host \"%s\", not "
			      "\"%s\"",
			      d->cfg.data_dir, host, d->cfg.host_name);
		if (d->cfg.cluster.enabled && id != d->cfg.cluster.self.id)
			fatal(d,
			      "data directory %s belongs to member %llu, not "
			      "%llu",
			      d->cfg.data_dir, id,
			      (unsigned long long)d->cfg.cluster.self.id);
	} else if (errno == ENOENT) {
		if (d->cfg.host_name) {
			snprintf(host, sizeof(host), "%s", d->cfg.host_name);
		} else {
			char sys[256];
			bool ok = !gethostname(sys, sizeof(sys) - 1);

			sys[sizeof(sys) - 1] = '\0';
			if (!hostname_default(ok ? sys : NULL, host))
				log_msg(5,
					"system host name \"%s\" is not usable "
					"as this host's name: using \"%s\" "
					"(recorded in %s; --host-name chooses "
					"another at the first start)",
					ok ? sys : "", host, path);
		}
	} else {
		fatal(d, "cannot read %s: %s", path, strerror(errno));
	}
	if (!f && d->cfg.cluster.enabled)
		id = d->cfg.cluster.self.id;
	if (!hostname_valid(host))
		fatal(d,
		      "host name \"%s\" is not valid (letters, digits, "
		      "'-', '_', '.'; at most 64)",
		      host);
	inc++;
	snprintf(text, sizeof(text),
		 "# xenstored member identity: do not edit\nhost=%s\nid=%llu\n"
		 "incarnation=%llu\n",
		 host, id, inc);
	rc = write_file_atomic(path, text);
	if (rc)
		fatal(d, "cannot write %s: %s", path, strerror(-rc));
	d->host = strdup(host);
	d->member_id = id;
	d->incarnation = inc;
}

/* ---- Daemonizing ------------------------------------------------------ */

/*
 * Fork into the background; the parent waits until the child serves (or
 * fails) and exits accordingly, so "xenstored && xenstore-ls" works.
 */
static void daemonize(struct daemon *d)
{
	int fds[2];
	pid_t pid;
	char buf[1024];
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC))
		fatal(d, "pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		fatal(d, "fork: %s", strerror(errno));
	if (pid > 0) {
		close(fds[1]);
		n = read(fds[0], buf, sizeof(buf) - 1);
		if (n == 1 && buf[0] == '\0')
			_exit(0);
		if (n > 0) {
			buf[n] = '\0';
			fprintf(stderr, "xenstored: %s\n", buf);
		} else {
			fprintf(stderr, "xenstored: the daemon exited during "
					"start-up\n");
		}
		_exit(1);
	}
	close(fds[0]);
	d->ready_fd = fds[1];
	setsid();
	pid = fork();
	if (pid < 0)
		fatal(d, "fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (chdir("/"))
		fatal(d, "chdir /: %s", strerror(errno));
	umask(0);
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

/* ---- Sockets -------------------------------------------------------- */

static void on_accept(uv_poll_t *h, int status, int events)
{
	struct daemon *d = h->data;
	bool ro = h == &d->listen_poll[1];
	struct conn_identity id = {.domid = 0,
				   .privileged = true,
				   .readonly = ro,
				   .target = STORE_NO_TARGET};
	struct conn *c;
	int fd, rc;

	if (status < 0 || d->stopping)
		return;
	/* A bounded number per wake-up, so one burst cannot stall the loop. */
	for (int i = 0; i < 64; i++) {
		fd = accept4(d->listen_fd[ro], NULL, NULL,
			     SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				log_msg(4, "accept on %s: %s",
					d->socket_path[ro], strerror(errno));
			return;
		}
		rc = conn_socket_new(d->pool, fd, &id, &d->limits, &d->client,
				     ++d->conn_serial, &c);
		if (rc) {
			log_msg(4, "cannot serve a new connection: %s",
				strerror(-rc));
			close(fd);
		}
	}
}

static int listen_on(struct daemon *d, int i, mode_t mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	const char *path = d->socket_path[i];
	int fd;

	if (strlen(path) >= sizeof(sa.sun_path))
		fatal(d, "socket path %s is too long", path);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fatal(d, "socket: %s", strerror(errno));
	unlink(path); /* a stale socket of an earlier run */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)))
		fatal(d, "cannot bind %s: %s", path, strerror(errno));
	if (chmod(path, mode))
		fatal(d, "chmod %s: %s", path, strerror(errno));
	if (listen(fd, 128))
		fatal(d, "listen on %s: %s", path, strerror(errno));
	d->listen_fd[i] = fd;
	uv_poll_init(d->loop, &d->listen_poll[i], fd);
	d->listen_poll[i].data = d;
	uv_poll_start(&d->listen_poll[i], UV_READABLE, on_accept);
	return 0;
}

static void write_pid_file(struct daemon *d)
{
	char text[32];
	int rc;

	if (!d->cfg.pid_file)
		return;
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	rc = write_file_atomic(d->cfg.pid_file, text);
	if (rc)
		fatal(d, "cannot write pid file %s: %s", d->cfg.pid_file,
		      strerror(-rc));
}

/* ---- Start-up --------------------------------------------------------- */

static void serve(struct daemon *d)
{
	listen_on(d, 0, 0600);
	listen_on(d, 1, 0666);
	domains_start(d);
	write_pid_file(d);
	d->serving = true;
	log_msg(5,
		"ready: host %s, %zu nodes, applied index %" PRIu64
		", sockets %s and %s, data in %s",
		d->host, store_node_count(d->store, d->host),
		store_applied_index(d->store), d->socket_path[0],
		d->socket_path[1], d->cfg.data_dir);
	if (d->cfg.output_pid) {
		printf("%ld\n", (long)getpid());
		fflush(stdout);
	}
	if (d->ready_fd >= 0) {
		char ok = '\0';
		ssize_t rc = write(d->ready_fd, &ok, 1);

		(void)rc;
		close(d->ready_fd);
		d->ready_fd = -1;
		detach_stdio();
	}
}

static void host_ready(struct daemon *d, void *arg, int result)
{
	if (d->stopping)
		return;
	if (result)
		fatal(d, "cannot create the tree of host %s: %s", d->host,
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
	struct sm_origin o = {d->member_id, 0, d->host, NULL, 0, 0};
	const struct store_member *known;
	struct store_member me;
	bool has_me = self_member(d, &me);
	void *buf;
	size_t len;
	int rc;

	if (status)
		fatal(d, "not caught up with the log within %u ms: giving up",
		      d->cfg.ready_timeout_ms);
	if (store_host_exists(d->store, d->host)) {
		known = store_member_by_id(d->store, d->member_id);
		if (has_me && (!known || strcmp(known->name, me.name) ||
			       strcmp(known->raft_address, me.raft_address) ||
			       strcmp(known->peer_address, me.peer_address))) {
			o.seq = submit_next_seq(d);
			if (!sm_entry_member(&o, &me, false, &buf, &len))
				submit_entry(d, NULL, NULL, buf, len, o.seq,
					      member_recorded, NULL);
		}
		serve(d);
		return;
	}
	o.seq = submit_next_seq(d);
	rc = sm_entry_host_init(&o, has_me ? &me : NULL, &buf, &len);
	if (!rc)
		rc = submit_entry(d, NULL, NULL, buf, len, o.seq, host_ready,
				   NULL);
	if (rc)
		fatal(d, "cannot create the tree of host %s: %s", d->host,
		      strerror(-rc));
}

static void on_tick(uv_timer_t *t)
{
	struct daemon *d = t->data;
	uint64_t now = uv_now(d->loop);

	submit_tick(d, now);
	cluster_tick(d, now);
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
	uv_timer_stop(&d->drain);
	domains_close(d);
	conn_pool_close_all(d->pool, "daemon stopping");
	uv_signal_stop(&d->sig_term);
	uv_signal_stop(&d->sig_int);
	uv_signal_stop(&d->sig_hup);
	uv_timer_stop(&d->tick);
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
	} else if (uv_now(d->loop) >= d->drain_deadline_ms) {
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
	int i;

	if (d->stopping) {
		if (uv_is_active((uv_handle_t *)&d->drain)) {
			log_msg(5, "stopping now: %s again", why);
			shutdown_finish(d);
		}
		return;
	}
	d->stopping = true;
	log_msg(5, "stopping: %s", why);
	if (d->serving) {
		for (i = 0; i < 2; i++) {
			uv_poll_stop(&d->listen_poll[i]);
			close(d->listen_fd[i]);
			unlink(d->socket_path[i]);
		}
	}
	if (!d->serving || drained(d)) {
		shutdown_finish(d);
		return;
	}
	d->drain_deadline_ms = uv_now(d->loop) + 2000;
	uv_timer_start(&d->drain, on_drain, 5, 5);
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

/*
 * Socket: DIR/socket with an explicit --run-dir; else $XENSTORED_PATH if
 * set (as Xen's daemon and clients use it); else $XENSTORED_RUNDIR/socket;
 * else /var/run/xenstored/socket. The read-only socket is its name + "_ro".
 */
static void daemon_free(struct daemon *d)
{
	domains_free(d);
	submit_free(d);
	cluster_free(d);
	peers_free(d);
	trace_free(d->trace);
	store_free(d->store);
	watches_free(d->watches);
	free(d->host);
	free(d->socket_path[0]);
	free(d->socket_path[1]);
	free((char *)d->cfg.pid_file);
	free((char *)d->cfg.trace_file);
	free((char *)d->cfg.log_file);
	free((char *)d->cfg.data_dir);
	free((char *)d->cfg.run_dir);
	free((char *)d->cfg.config_file);
	free((char *)d->cfg.host_name);
}

static void resolve_paths(struct daemon *d)
{
	const char *env_path = getenv("XENSTORED_PATH");
	const char *run = d->cfg.run_dir;
	char *s;

	if (!run || !*run)
		run = getenv("XENSTORED_RUNDIR");
	if (!run || !*run)
		run = DEFAULT_RUN_DIR;
	char *old_run = (char *)d->cfg.run_dir, *old_data = (char *)d->cfg.data_dir;
	char *old_pid = (char *)d->cfg.pid_file, *old_log = (char *)d->cfg.log_file;

	if (!d->cfg.run_dir && env_path && *env_path)
		d->socket_path[0] = absolute(env_path);
	d->cfg.run_dir = absolute(run);
	d->cfg.data_dir =
		absolute(d->cfg.data_dir ? d->cfg.data_dir : DEFAULT_DATA_DIR);
	d->cfg.pid_file = absolute(d->cfg.pid_file);
	d->cfg.log_file = absolute(d->cfg.log_file);
	s = absolute(d->cfg.trace_file);
	d->trace = trace_new(s);
	if (!d->trace)
		fatal(d, "out of memory");
	free(s);
	free(old_run);
	free(old_data);
	free(old_pid);
	free(old_log);
	if (!d->socket_path[0] && d->cfg.run_dir &&
	    asprintf(&d->socket_path[0], "%s/socket", d->cfg.run_dir) < 0)
		d->socket_path[0] = NULL;
	if (d->socket_path[0] &&
	    asprintf(&s, "%s_ro", d->socket_path[0]) >= 0)
		d->socket_path[1] = s;
	if (!d->cfg.run_dir || !d->cfg.data_dir || !d->socket_path[0] ||
	    !d->socket_path[1])
		fatal(d, "out of memory");
	/* In a Xen dom0 (its kernel's store ring is there) serve guests. */
	if (!d->cfg.ring_backend && access("/proc/xen/xsd_kva", F_OK) == 0)
		d->cfg.ring_backend = "xen";
	/* sim:DIR relative to where we were started, not to "/" */
	if (d->cfg.ring_backend && !strncmp(d->cfg.ring_backend, "sim:", 4) &&
	    d->cfg.ring_backend[4] != '/') {
		char *abs = absolute(d->cfg.ring_backend + 4);

		if (!abs || asprintf(&s, "sim:%s", abs) < 0)
			fatal(d, "out of memory");
		free(abs);
		d->cfg.ring_backend = s;
	}
}

int main(int argc, char **argv)
{
	static struct daemon dm; /* lives as long as the process */
	struct daemon *d = &dm;
	struct repl_config rc_cfg = {REPL_CONFIG_DEFAULTS};
	struct repl_member *members = NULL;
	bool in_initial = false;
	struct repl_fsm fsm;
	struct conn_limits limits = CONN_LIMITS_DEFAULT;
	char raft_dir[PATH_MAX];
	uint8_t hash_key[STORE_HASH_KEY_LEN];
	uv_loop_t loop;
	int rc;

	d->ready_fd = -1;
	options_defaults(&d->cfg);
	rc = options_parse(&d->cfg, argc, argv);
	if (rc == 1) {
		options_usage(stdout);
		return 0;
	}
	if (rc) {
		fprintf(stderr, "Try 'xenstored --help'.\n");
		return 1;
	}
	resolve_paths(d);
	if ((rc = mkdir_p(d->cfg.run_dir, 0755)) ||
	    (rc = mkdir_p(d->cfg.data_dir, 0700))) {
		fprintf(stderr, "xenstored: cannot create %s or %s: %s\n",
			d->cfg.run_dir, d->cfg.data_dir, strerror(-rc));
		return 1;
	}
	if (!d->cfg.foreground)
		daemonize(d);
	log_open(d->cfg.foreground, d->cfg.verbose, d->cfg.log_file);
	signal(SIGPIPE, SIG_IGN);
	lock_data_dir(d);
	load_identity(d);
	log_msg(6, "starting: host %s, incarnation %" PRIu64 ", data in %s",
		d->host, d->incarnation, d->cfg.data_dir);
	trace_open(d->trace);
	dispatch_handler(d, &d->client);

	d->limits = limits;
	d->listen_fd[0] = d->listen_fd[1] = -1;
	uv_loop_init(&loop);
	d->loop = &loop;
	hashkey_store(d->cfg.cluster.has_key ? d->cfg.cluster.key : NULL,
		      d->cfg.cluster.enabled, d->host, d->member_id, hash_key);
	d->store = store_new_keyed(hash_key);
	d->watches = watches_new();
	d->pool = conn_pool_new(&loop);
	if (!d->store || !d->watches || !d->pool)
		fatal(d, "out of memory");

	uv_signal_init(&loop, &d->sig_term);
	uv_signal_init(&loop, &d->sig_int);
	uv_signal_init(&loop, &d->sig_hup);
	d->sig_term.data = d->sig_int.data = d->sig_hup.data = d;
	uv_signal_start(&d->sig_term, on_signal, SIGTERM);
	uv_signal_start(&d->sig_int, on_signal, SIGINT);
	uv_signal_start(&d->sig_hup, on_signal, SIGHUP);

	snprintf(raft_dir, sizeof(raft_dir), "%s/raft", d->cfg.data_dir);
	rc = mkdir_p(raft_dir, 0700);
	if (rc)
		fatal(d, "cannot create %s: %s", raft_dir, strerror(-rc));
	memset(&fsm, 0, sizeof(fsm));
	fsm.data = d;
	fsm.apply = apply_entry;
	fsm.snapshot_pin = snapshot_pin;
	fsm.snapshot_write = snapshot_write;
	fsm.snapshot_unpin = snapshot_unpin;
	fsm.restore = snapshot_restore;
	fsm.log = log_cb;
	fsm.disk_failed = disk_failed;
	rc_cfg.id = d->member_id;
	rc_cfg.data_dir = raft_dir;
	rc_cfg.snapshot_threshold = d->cfg.snapshot_threshold;
	rc_cfg.snapshot_trailing = d->cfg.snapshot_trailing;
	if (d->cfg.cluster.enabled) {
		const struct cluster_cfg *cl = &d->cfg.cluster;
		size_t i;

		members = calloc(cl->n_members ? cl->n_members : 1,
				 sizeof(*members));
		if (!members)
			fatal(d, "out of memory");
		for (i = 0; i < cl->n_members; i++) {
			members[i].id = cl->members[i].id;
			members[i].address = cl->members[i].raft_address;
			if (cl->members[i].id == d->member_id)
				in_initial = true;
		}
		rc_cfg.address = cl->self.raft_address;
		rc_cfg.members = members;
		rc_cfg.n_members = cl->n_members;
		/* not among the initial members: wait to be added */
		rc_cfg.join = !in_initial;
		rc_cfg.key = cl->has_key ? cl->key : NULL;
		rc_cfg.election_timeout_ms = cl->election_timeout_ms;
		rc_cfg.heartbeat_timeout_ms = cl->heartbeat_timeout_ms;
		log_msg(6, "member %" PRIu64 " of a cluster: raft %s, peers %s%s",
			d->member_id, cl->self.raft_address,
			cl->self.peer_address,
			in_initial ? "" : " (joining: waiting to be added)");
	}
	/* the modules that applying entries reaches, before the log */
	if (peers_open(d) || submit_open(d) || cluster_open(d))
		fatal(d, "out of memory");
	rc = domains_open(d, &d->client);
	if (rc)
		fatal(d, "cannot use ring backend %s: %s", d->cfg.ring_backend,
		      strerror(-rc));
	rc = repl_open(&loop, &rc_cfg, &fsm, &d->repl);
	free(members);
	if (rc)
		fatal(d, "cannot open the log in %s: %s", raft_dir,
		      strerror(-rc));
	rc = peers_listen(d);
	if (rc)
		fatal(d, "cannot listen for peers on %s: %s",
		      d->cfg.cluster.self.peer_address, strerror(-rc));
	uv_timer_init(&loop, &d->tick);
	d->tick.data = d;
	uv_timer_init(&loop, &d->drain);
	d->drain.data = d;
	uv_timer_start(&d->tick, on_tick, 10, 10);
	if (cluster_wait_ready(d, caught_up))
		fatal(d, "out of memory starting to catch up");

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
	return d->exit_code;
}
