/*
 * node/main.c: the xenstored process: options and paths, daemonizing (the
 * parent returns once the daemon serves, as Xen's init scripts expect),
 * the data directory's lock and identity; then node/daemon.c runs it.
 */
#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <poll.h>
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

#include "node/backup.h"
#include "node/daemon.h"
#include "node/datadir.h"
#include "node/options.h"
#include "node/trace.h"
#include "consensus/tls.h"
#include "version.h"

#define DEFAULT_RUN_DIR "/var/run/xenstored"
#define BIND_WAIT_MS 10000 /* as datadir_lock()'s wait */

/* ---- Daemonizing ------------------------------------------------------ */

/*
 * Fork into the background; the parent waits until the child serves (or
 * fails) and exits accordingly, so "xenstored && xenstore-ls" works.
 */
static void daemonize(void)
{
	int fds[2];
	pid_t pid;
	char buf[1024];
	ssize_t n;

	if (pipe2(fds, O_CLOEXEC))
		log_fatal("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		log_fatal("fork: %s", strerror(errno));
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
	log_set_parent(fds[1]);
	setsid();
	pid = fork();
	if (pid < 0)
		log_fatal("fork: %s", strerror(errno));
	if (pid > 0)
		_exit(0);
	if (chdir("/"))
		log_fatal("chdir /: %s", strerror(errno));
}

/*
 * Socket: DIR/socket with an explicit --run-dir; else $XENSTORED_PATH if
 * set (as Xen's daemon and clients use it); else $XENSTORED_RUNDIR/socket;
 * else /var/run/xenstored/socket. The read-only socket is its name + "_ro".
 */
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
		d->cfg.socket_path[0] = datadir_absolute(env_path);
	d->cfg.run_dir = datadir_absolute(run);
	d->cfg.data_dir =
		datadir_absolute(d->cfg.data_dir ? d->cfg.data_dir
						  : options_default_data_dir());
	d->cfg.pid_file = datadir_absolute(d->cfg.pid_file);
	d->cfg.log_file = datadir_absolute(d->cfg.log_file);
	s = datadir_absolute(d->cfg.trace_file);
	d->trace = trace_new(s);
	if (!d->trace)
		log_fatal("out of memory");
	free(s);
	free(old_run);
	free(old_data);
	free(old_pid);
	free(old_log);
	if (!d->cfg.socket_path[0] && d->cfg.run_dir &&
	    asprintf(&d->cfg.socket_path[0], "%s/socket", d->cfg.run_dir) < 0)
		d->cfg.socket_path[0] = NULL;
	if (d->cfg.socket_path[0] &&
	    asprintf(&s, "%s_ro", d->cfg.socket_path[0]) >= 0)
		d->cfg.socket_path[1] = s;
	if (!d->cfg.run_dir || !d->cfg.data_dir || !d->cfg.socket_path[0] ||
	    !d->cfg.socket_path[1])
		log_fatal("out of memory");
	/* TLS credentials named relative to where we were started */
	{
		char **files[] = {&d->cfg.cluster.ca_file,
				  &d->cfg.cluster.cert_file,
				  &d->cfg.cluster.key_file};

		for (size_t i = 0; i < 3; i++) {
			if (!*files[i])
				continue;
			s = datadir_absolute(*files[i]);
			if (!s)
				log_fatal("out of memory");
			free(*files[i]);
			*files[i] = s;
		}
	}
	/* In a Xen dom0 (its kernel's store ring is there) serve guests. */
	if (!d->cfg.ring_backend && access("/proc/xen/xsd_kva", F_OK) == 0)
		d->cfg.ring_backend = "xen";
	/* sim:DIR relative to where we were started, not to "/" */
	if (d->cfg.ring_backend && !strncmp(d->cfg.ring_backend, "sim:", 4) &&
	    d->cfg.ring_backend[4] != '/') {
		char *abs = datadir_absolute(d->cfg.ring_backend + 4);

		if (!abs || asprintf(&s, "sim:%s", abs) < 0)
			log_fatal("out of memory");
		free(abs);
		d->cfg.ring_backend = s;
	}
}

/* ---- Checks before anything is created ---------------------------------- */

/* Bind a TCP socket to address and let it go: 0 or -errno. */
static int try_bind(const char *address)
{
	struct sockaddr_storage ss;
	int fd, one = 1, rc = 0;

	if (!options_address(address, &ss))
		return -EINVAL;
	fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	/* as libuv's uv_tcp_bind(), which the transports use */
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss,
		 ss.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
					  : sizeof(struct sockaddr_in)))
		rc = -errno;
	close(fd);
	return rc;
}

/*
 * A member's Raft and peer addresses can be bound, before the data
 * directory is touched: a port in use or an address not of this host is
 * reported as what it is. A port held by this member's previous daemon,
 * still exiting (its data directory's lock is held), is waited for as
 * long as datadir_lock() would wait. Checking (--check-config), a port in
 * use while this member's daemon runs is only noted: it is the one using
 * it.
 */
static int addresses_check(struct daemon *d, bool checking)
{
	const struct cluster_cfg *cl = &d->cfg.cluster;
	const char *what[2] = {"raft-address", "peer-address"};
	const char *addr[2] = {cl->self.raft_address, cl->self.peer_address};
	int i, rc, waited_ms, bad = 0;

	if (!cl->enabled)
		return 0;
	for (i = 0; i < 2; i++) {
		waited_ms = 0;
		while ((rc = try_bind(addr[i])) == -EADDRINUSE && !checking &&
		       waited_ms < BIND_WAIT_MS &&
		       datadir_locked(d->cfg.data_dir, NULL)) {
			if (!waited_ms)
				fprintf(stderr,
					"xenstored: [member] %s %s is in use "
					"and the data directory %s locked: "
					"waiting up to %d s for the previous "
					"daemon to exit\n",
					what[i], addr[i], d->cfg.data_dir,
					BIND_WAIT_MS / 1000);
			usleep(100 * 1000);
			waited_ms += 100;
		}
		if (!rc)
			continue;
		if (rc == -EADDRINUSE && checking &&
		    datadir_locked(d->cfg.data_dir, NULL)) {
			printf("note: [member] %s %s is in use now, as this "
			       "member's daemon runs (its data directory %s "
			       "is locked)\n",
			       what[i], addr[i], d->cfg.data_dir);
			continue;
		}
		fprintf(stderr,
			"xenstored: cannot bind [member] %s %s (%s:%d): %s%s\n",
			what[i], addr[i], d->cfg.config_file,
			cl->self_address_line[i], strerror(-rc),
			rc == -EADDRINUSE ? " (another process listens there)"
			: rc == -EADDRNOTAVAIL
				? " (not an address of this host)"
				: "");
		bad++;
	}
	return bad ? -EADDRINUSE : 0;
}

/*
 * --check-config: the options and the file parsed; now what can be known
 * without creating anything. Prints "ok" or the errors; the exit status.
 */
static int check_config(struct daemon *d)
{
	const struct cluster_cfg *cl = &d->cfg.cluster;
	struct tls_creds *creds = NULL;
	char err[512];
	int bad = 0;

	if (addresses_check(d, true))
		bad++;
	if (cl->enabled && cl->ca_file) {
		if (tls_creds_load(cl->ca_file, cl->cert_file, cl->key_file,
				   cl->self.id, &creds, err, sizeof(err))) {
			fprintf(stderr, "xenstored: %s: TLS credentials: %s\n",
				d->cfg.config_file, err);
			bad++;
		}
		tls_creds_free(creds);
	}
	if (bad)
		return 1;
	printf("ok: %s%s, data in %s\n",
	       cl->enabled ? "cluster member " : "a cluster of one",
	       cl->enabled ? cl->self.name : "", d->cfg.data_dir);
	return 0;
}

/* ---- A new cluster from what is left ----------------------------------- */

/* Whether dir is absent or holds nothing. */
static bool dir_absent_or_empty(const char *dir)
{
	struct dirent *e;
	DIR *dh = opendir(dir);
	bool empty = true;

	if (!dh)
		return errno == ENOENT;
	while (empty && (e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(dh);
	return empty;
}

/*
 * --restore FILE, before anything is created: the data directory must be
 * new and the file whole. Exits 1 with the reason on stderr otherwise.
 */
static void restore_check(struct daemon *d, struct backup_file *b)
{
	char why[512];

	if (!dir_absent_or_empty(d->cfg.data_dir)) {
		fprintf(stderr, "xenstored: --restore %s: refused: the data "
				"directory %s is not empty (a restore starts a "
				"new cluster in a new directory)\n",
			d->cfg.restore_file, d->cfg.data_dir);
		exit(1);
	}
	if (backup_load(d->cfg.restore_file, b, why, sizeof(why))) {
		fprintf(stderr, "xenstored: --restore %s: refused: %s\n",
			d->cfg.restore_file, why);
		exit(1);
	}
}

/* Seed DATA/raft from the checked backup, once the directory is ours. */
static void restore_seed(struct daemon *d, struct backup_file *b)
{
	char raft_dir[PATH_MAX], why[PATH_MAX + 512];
	int rc;

	snprintf(raft_dir, sizeof(raft_dir), "%s/raft", d->cfg.data_dir);
	rc = datadir_mkdir_p(raft_dir, 0700);
	if (!rc)
		rc = backup_seed(d, raft_dir, b, why, sizeof(why));
	else
		snprintf(why, sizeof(why), "cannot create %s: %s", raft_dir,
			 strerror(-rc));
	free(b->bytes);
	b->bytes = NULL;
	if (rc)
		log_fatal("--restore %s: %s", d->cfg.restore_file, why);
}

/*
 * `cluster recover` stopped the daemon: run this program again, with the
 * same pid, as the member's own start with --force-new-cluster would
 * (and in the foreground, since it already is a daemon).
 */
static int rerun_recovering(struct daemon *d, int argc, char **argv,
			    const char *start_dir)
{
	char **av = calloc((size_t)argc + 3, sizeof(*av));
	int i, n = 0;

	if (!av)
		log_fatal("out of memory");
	/* relative paths on the command line are the starter's */
	if (start_dir && chdir(start_dir))
		log_msg(4, "cluster recover: cannot go back to %s: %s",
			start_dir, strerror(errno));
	for (i = 0; i < argc; i++) {
		/* a restore was this process's start, not the next one's */
		if (!strcmp(argv[i], "--restore") && i + 1 < argc) {
			i++;
			continue;
		}
		if (!strncmp(argv[i], "--restore=", 10))
			continue;
		av[n++] = argv[i];
	}
	av[n++] = "--force-new-cluster";
	if (!d->cfg.foreground)
		av[n++] = "-N";
	av[n] = NULL;
	log_msg(3, "cluster recover: starting again with --force-new-cluster");
	execv("/proc/self/exe", av);
	log_msg(2, "cluster recover: cannot run /proc/self/exe again (%s): "
		   "start this member with --force-new-cluster",
		strerror(errno));
	return 1;
}

/*
 * Does a daemon answer on this socket within a second? A daemon killed a
 * moment ago may still hold the data directory's lock and name itself in
 * the pid file while the kernel tears it down: it answers nothing, and the
 * start goes on (waiting for the lock, node/datadir.h). One answering is
 * running: a second start then has nothing to do.
 */
static bool serves(const char *path)
{
	static const char req[] = "\x02\0\0\0" /* XS_READ */
				  "\0\0\0\0"   /* req_id */
				  "\0\0\0\0"   /* tx_id */
				  "\x02\0\0\0" /* len */
				  "/";	       /* and its NUL */
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct pollfd pfd;
	char reply[16];
	bool ok = false;
	int fd;

	if (!path || strlen(path) >= sizeof(sa.sun_path))
		return false;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	pfd.fd = fd;
	pfd.events = POLLIN;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    write(fd, req, sizeof(req)) == (ssize_t)sizeof(req) &&
	    poll(&pfd, 1, 1000) == 1 &&
	    read(fd, reply, sizeof(reply)) == (ssize_t)sizeof(reply))
		ok = true;
	close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	static struct daemon dm; /* lives as long as the process */
	struct daemon *d = &dm;
	struct datadir_identity me;
	struct backup_file backup = {0};
	static char *start_dir; /* reachable: not a leak at exit */
	long running;
	int rc;

	/* nothing we create is writable by others; what holds requests'
	 * payloads (the log, the trace, reports) is 0600 (log.h) */
	umask(022);
	start_dir = getcwd(NULL, 0); /* for `cluster recover`'s new start */
	options_defaults(&d->cfg);
	rc = options_parse(&d->cfg, argc, argv);
	if (rc == 1) {
		options_usage(stdout);
		return 0;
	}
	if (rc == 2) {
		printf("xenstored (%s) %s\n", XSR_PROJECT_NAME, XSR_VERSION);
		return 0;
	}
	if (rc) {
		if (!d->cfg.check_config)
			fprintf(stderr, "Try 'xenstored --help'.\n");
		return 1;
	}
	resolve_paths(d);
	if (d->cfg.force_new_cluster && !d->cfg.cluster.enabled) {
		fprintf(stderr, "xenstored: --force-new-cluster: this daemon "
				"is a cluster of one already (no [member] in "
				"a --config file)\n");
		return 1;
	}
	if (d->cfg.check_config)
		return check_config(d);
	if (!d->cfg.force_new_cluster && !d->cfg.restore_file &&
	    (running = datadir_running(d->cfg.data_dir, d->cfg.pid_file)) &&
	    serves(d->cfg.socket_path[0])) {
		fprintf(stderr, "xenstored: already running (pid %ld, pid file "
				"%s, data in %s): nothing to do\n",
			running, d->cfg.pid_file, d->cfg.data_dir);
		return 0;
	}
	if (addresses_check(d, false))
		return 1;
	if (d->cfg.restore_file)
		restore_check(d, &backup);
	if ((rc = datadir_mkdir_p(d->cfg.run_dir, 0755)) ||
	    (rc = datadir_mkdir_p(d->cfg.data_dir, 0700))) {
		fprintf(stderr, "xenstored: cannot create %s or %s: %s\n",
			d->cfg.run_dir, d->cfg.data_dir, strerror(-rc));
		return 1;
	}
	if (!d->cfg.foreground)
		daemonize();
	log_open(d->cfg.foreground, d->cfg.verbose, d->cfg.log_file);
	log_crash_handler_install();
	signal(SIGPIPE, SIG_IGN);
	datadir_lock(d->cfg.data_dir);
	datadir_identity(&d->cfg, &me);
	d->host = strdup(me.host);
	if (!d->host)
		log_fatal("out of memory");
	d->member_id = me.member_id;
	d->incarnation = me.incarnation;
	log_msg(6, "starting: host %s, incarnation %" PRIu64 ", data in %s",
		d->host, d->incarnation, d->cfg.data_dir);
	if (d->cfg.restore_file)
		restore_seed(d, &backup);
	rc = daemon_run(d);
	if (rc == 0 && d->recover_on_exit)
		return rerun_recovering(d, argc, argv, start_dir);
	free(start_dir);
	return rc;
}
