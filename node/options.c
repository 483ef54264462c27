/*
 * node/options.c: the command line and the config file.
 *
 * One table drives both: every long option is also a key of the config
 * file's [xenstored] section ("trace-file = /var/log/xen/trace"). The
 * config file is read first; the command line overrides it. The options
 * of Xen 4.17's xenstored keep their meaning.
 */
#include "node/options.h"
#include "node/hostname.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

enum {
	O_DATA_DIR = 256,
	O_RUN_DIR,
	O_CONFIG,
	O_LOG_FILE,
	O_HOST_NAME,
	O_SNAP_THRESHOLD,
	O_SNAP_TRAILING,
	O_READY_TIMEOUT,
	O_EVENT,
	O_MASTER_DOMID,
	O_PRIV_DOMID,
	O_RING_BACKEND,
	O_SOCKET_RO_GROUP,
	O_MAX_CONNECTIONS,
	O_GUEST_WRITE_RATE,
	O_VERSION,
	O_RESTORE,
	O_FORCE_NEW_CLUSTER,
};

static const struct option long_opts[] = {
	{"no-domain-init", no_argument, NULL, 'D'},
	{"entry-nb", required_argument, NULL, 'E'},
	{"pid-file", required_argument, NULL, 'F'},
	{"help", no_argument, NULL, 'H'},
	{"version", no_argument, NULL, O_VERSION},
	{"no-fork", no_argument, NULL, 'N'},
	{"output-pid", no_argument, NULL, 'P'},
	{"entry-size", required_argument, NULL, 'S'},
	{"trace-file", required_argument, NULL, 'T'},
	{"transaction", required_argument, NULL, 't'},
	{"perm-nb", required_argument, NULL, 'A'},
	{"path-max", required_argument, NULL, 'M'},
	{"quota", required_argument, NULL, 'Q'},
	{"quota-soft", required_argument, NULL, 'q'},
	{"timeout", required_argument, NULL, 'w'},
	{"no-recovery", no_argument, NULL, 'R'},
	{"internal-db", optional_argument, NULL, 'I'},
	{"keep-orphans", no_argument, NULL, 'K'},
	{"verbose", no_argument, NULL, 'V'},
	{"watch-nb", required_argument, NULL, 'W'},
	{"live-update", no_argument, NULL, 'U'},
	{"event", required_argument, NULL, O_EVENT},
	{"master-domid", required_argument, NULL, O_MASTER_DOMID},
	{"priv-domid", required_argument, NULL, O_PRIV_DOMID},
	{"data-dir", required_argument, NULL, O_DATA_DIR},
	{"run-dir", required_argument, NULL, O_RUN_DIR},
	{"config", required_argument, NULL, O_CONFIG},
	{"log-file", required_argument, NULL, O_LOG_FILE},
	{"host-name", required_argument, NULL, O_HOST_NAME},
	{"snapshot-threshold", required_argument, NULL, O_SNAP_THRESHOLD},
	{"snapshot-trailing", required_argument, NULL, O_SNAP_TRAILING},
	{"ready-timeout", required_argument, NULL, O_READY_TIMEOUT},
	{"ring-backend", required_argument, NULL, O_RING_BACKEND},
	{"socket-ro-group", required_argument, NULL, O_SOCKET_RO_GROUP},
	{"max-connections", required_argument, NULL, O_MAX_CONNECTIONS},
	{"guest-write-rate", required_argument, NULL, O_GUEST_WRITE_RATE},
	{"restore", required_argument, NULL, O_RESTORE},
	{"force-new-cluster", no_argument, NULL, O_FORCE_NEW_CLUSTER},
	{NULL, 0, NULL, 0},
};

static const char short_opts[] = "DE:F:HhNPS:T:t:A:M:Q:q:w:RI::KVW:U";

void options_usage(FILE *f)
{
	fprintf(f,
"Usage: xenstored [options]\n"
"\n"
"A replicated xenstored: serves the Xen store on Unix sockets like Xen's own\n"
"daemon, and commits every change to a Raft log in its data directory, so\n"
"the store survives a crash or a restart.\n"
"\n"
"Options of Xen's xenstored (same meaning):\n"
"  -N, --no-fork              stay in the foreground\n"
"  -F, --pid-file FILE        write the daemon's pid to FILE once it serves\n"
"  -P, --output-pid           print the daemon's pid on stdout once it serves\n"
"  -T, --trace-file FILE      trace every request and reply to FILE\n"
"                             (SIGHUP reopens it; CONTROL log on|off)\n"
"  -E, --entry-nb N           nodes a domain may own (default 1000)\n"
"  -S, --entry-size N         bytes of a node record (default 2048)\n"
"  -W, --watch-nb N           watches per domain (default 128)\n"
"  -t, --transaction N        transactions per domain (default 10)\n"
"  -A, --perm-nb N            permissions per node (default 5)\n"
"  -M, --path-max N           path length after /local/domain/<id>/\n"
"                             (default and maximum 2048)\n"
"  -Q, --quota WHAT=N         transaction-nodes (1024), memory (2621440),\n"
"                             outstanding (20)\n"
"  -q, --quota-soft memory=N  warning level of the memory quota (2097152)\n"
"  -w, --timeout watch-event=SECONDS\n"
"                             how long an unread watch event waits for a\n"
"                             guest (accepted; guests come with rings)\n"
"  -V, --verbose              log debug messages too\n"
"  -H, -h, --help             show this help\n"
"  --version                  print the version (xenstored-raft's) and exit\n"
"  -D, --no-domain-init, -R, --no-recovery, -I, --internal-db[=on|off],\n"
"  -K, --keep-orphans, --event PORT, --master-domid ID\n"
"                             accepted for compatibility; without effect\n"
"                             here (see docs/COMPATIBILITY.md)\n"
"  --priv-domid ID            only 0 is supported: dom0 is privileged\n"
"  -U, --live-update          refused: this daemon needs no live update,\n"
"                             its state survives a plain restart\n"
"\n"
"Options of this daemon:\n"
"  --data-dir DIR             the Raft log and snapshots\n"
"                             (default /var/lib/xenstored)\n"
"  --run-dir DIR              sockets DIR/socket and DIR/socket_ro; without\n"
"                             it the socket is $XENSTORED_PATH if set, else\n"
"                             $XENSTORED_RUNDIR/socket, else\n"
"                             /var/run/xenstored/socket (as Xen's daemon)\n"
"  --config FILE              read options from FILE's [xenstored] section,\n"
"                             \"key = value\" with the long option names;\n"
"                             the command line overrides it\n"
"  --log-file FILE            also log to FILE (default: stderr with -N,\n"
"                             else syslog)\n"
"  --host-name NAME           this host's name in the replicated forest\n"
"                             (default: the system host name up to its\n"
"                             first '.', recorded in the data directory at\n"
"                             the first start; one that is unset or not\n"
"                             letters, digits, '-', '_', '.' is sanitised,\n"
"                             else \"dom0\")\n"
"  --snapshot-threshold N     log entries between automatic snapshots\n"
"                             (default 16384; at least one per 256 bytes\n"
"                             of the last snapshot, so that a big tree is\n"
"                             not rewritten every few writes)\n"
"  --snapshot-trailing N      entries kept in the log after a snapshot,\n"
"                             so that a lagging peer catches up without\n"
"                             one (default 8192)\n"
"  --ready-timeout MS         longest wait to replay the log at start\n"
"                             before giving up (default 60000); a member\n"
"                             that serves its own tree locally after\n"
"                             [cluster] cold-start-wait waits on\n"
"  --ring-backend SPEC        how guests' rings are reached: \"xen\" (the\n"
"                             hypervisor; the default in a Xen dom0, where\n"
"                             /proc/xen/xsd_kva exists), \"sim:DIR\" (rings\n"
"                             and event channels emulated with files in DIR,\n"
"                             for tests), or \"none\" (sockets only; the\n"
"                             default elsewhere)\n"
"  --socket-ro-group GROUP    members of GROUP (a name or a gid) may use\n"
"                             socket_ro: read and watch every node, change\n"
"                             nothing (default: root alone, as for socket)\n"
"  --max-connections N        socket clients at once (default 1024, and\n"
"                             32 below the limit of open files); one more\n"
"                             is closed at once, and logged\n"
"  --guest-write-rate N       changes a guest may send per second once its\n"
"                             burst (10 s' worth) is spent: beyond it its\n"
"                             ring is not read for a while (default 200;\n"
"                             0: no limit)\n"
"\n"
"Starting a new cluster from what is left (command line only; README,\n"
"\"Backup and restore\" and \"Recovery after permanent loss\"):\n"
"  --restore FILE             seed an EMPTY data directory from FILE, a\n"
"                             backup (`xsadm cluster backup`): every host's\n"
"                             tree, the domain registry, quotas, members, at\n"
"                             the backup's log index; this member is then the\n"
"                             only voter of a new cluster (grow it with\n"
"                             `xsadm cluster add`). A damaged, truncated or\n"
"                             unknown file is refused, and nothing is created\n"
"  --force-new-cluster        make this (stopped) member the only voter of a\n"
"                             new cluster, keeping its whole log and every\n"
"                             host's replica; the other members are\n"
"                             forgotten, and what a lost majority committed\n"
"                             that this member never received is gone. Use\n"
"                             it once, on the member with the longest log,\n"
"                             when a quorum is lost for good\n"
"\n"
"Clients find the socket as with Xen's daemon: XENSTORED_PATH=SOCKET.\n"
"Both sockets are root's alone (mode 0600) unless --socket-ro-group.\n");
}

void options_defaults(struct config *cfg)
{
	const struct repl_config repl_defaults = {REPL_CONFIG_DEFAULTS};
	struct quotas q = QUOTAS_INIT;

	memset(cfg, 0, sizeof(*cfg));
	cfg->quotas = q;
	cfg->limits = (struct conn_limits)CONN_LIMITS_DEFAULT;
	cfg->watch_event_timeout_s = 20;
	cfg->max_connections = 1024;
	cfg->guest_write_rate = 200;
	cfg->snapshot_threshold = repl_defaults.snapshot_threshold;
	cfg->snapshot_trailing = repl_defaults.snapshot_trailing;
	cfg->ready_timeout_ms = 60000;
	/* Failover well under a second on a LAN (libraft randomises the
	 * election timeout between 1x and 2x). */
	cfg->cluster.election_timeout_ms = 200;
	cfg->cluster.heartbeat_timeout_ms = 25;
	cfg->cluster.commit_timeout_ms = 5000;
	/* a host's own tree stays writable without a quorum, as with a stock
	 * xenstored (README, "Standalone mode") */
	cfg->cluster.standalone = true;
	cfg->cluster.standalone_after_ms = 3000;
	/* well under Debian's 30 s wait for xenstored at boot */
	cfg->cluster.cold_start_wait_ms = 10000;
}

/* ---- [member] and [cluster] ------------------------------------------- */

static int number(const char *what, const char *arg, unsigned int *out);
static char *keep(const char *s);

/* "host:port" with a numeric IPv4 or [IPv6] address. */
static bool valid_address(const char *s)
{
	const char *colon = strrchr(s, ':');
	char *end;
	long port;

	if (!colon || colon == s)
		return false;
	port = strtol(colon + 1, &end, 10);
	return !*end && port > 0 && port < 65536;
}

static int member_field(const char *file, const char *what, const char *v,
			char **out)
{
	if (!strcmp(what, "name") ? !hostname_valid(v) : !valid_address(v)) {
		fprintf(stderr, "xenstored: %s: bad %s \"%s\"\n", file, what,
			v);
		return -EINVAL;
	}
	free(*out);
	*out = keep(v);
	return 0;
}

/* A file name of the config file (made absolute at start, main.c). */
static int set_path(char **out, const char *v)
{
	free(*out);
	*out = keep(v);
	return *out ? 0 : -ENOMEM;
}

static int parse_id(const char *file, const char *v, uint64_t *id)
{
	char *end;
	unsigned long long n = strtoull(v, &end, 10);

	/* ids from 2^63 on name guests' ring sessions in the log */
	if (!*v || *end || n == 0 || n >= (1ull << 63)) {
		fprintf(stderr, "xenstored: %s: bad member id \"%s\"\n", file, v);
		return -EINVAL;
	}
	*id = n;
	return 0;
}


/* [cluster] member = ID NAME RAFT-ADDRESS PEER-ADDRESS */
static int add_member(struct cluster_cfg *cl, const char *file, const char *v)
{
	char id[32], name[80], raft[128], peer[128];
	struct member_cfg m = {0}, *arr;
	size_t i;

	if (sscanf(v, "%31s %79s %127s %127s", id, name, raft, peer) != 4) {
		fprintf(stderr,
			"xenstored: %s: member = ID NAME RAFT-ADDRESS "
			"PEER-ADDRESS, not \"%s\"\n",
			file, v);
		return -EINVAL;
	}
	if (parse_id(file, id, &m.id) ||
	    member_field(file, "name", name, &m.name) ||
	    member_field(file, "raft address", raft, &m.raft_address) ||
	    member_field(file, "peer address", peer, &m.peer_address))
		return -EINVAL;
	for (i = 0; i < cl->n_members; i++) {
		if (cl->members[i].id == m.id ||
		    !strcmp(cl->members[i].name, m.name)) {
			fprintf(stderr,
				"xenstored: %s: member %llu (%s) is listed "
				"twice\n",
				file, (unsigned long long)m.id, m.name);
			return -EINVAL;
		}
	}
	arr = realloc(cl->members, (cl->n_members + 1) * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	cl->members = arr;
	arr[cl->n_members++] = m;
	return 0;
}

static int cluster_key(struct config *cfg, const char *file,
		       const char *section, const char *key, const char *v)
{
	struct cluster_cfg *cl = &cfg->cluster;

	if (!strcmp(section, "member")) {
		cl->enabled = true;
		if (!strcmp(key, "id"))
			return parse_id(file, v, &cl->self.id);
		if (!strcmp(key, "name"))
			return member_field(file, "name", v, &cl->self.name);
		if (!strcmp(key, "raft-address"))
			return member_field(file, "raft address", v,
					    &cl->self.raft_address);
		if (!strcmp(key, "peer-address"))
			return member_field(file, "peer address", v,
					    &cl->self.peer_address);
	} else {
		if (!strcmp(key, "member"))
			return add_member(cl, file, v);
		if (!strcmp(key, "key")) {
			fprintf(stderr,
				"xenstored: %s: [cluster] key is replaced by TLS "
				"certificates: ca-file, cert-file and key-file "
				"(see deploy/certs.sh and the README)\n",
				file);
			return -EINVAL;
		}
		if (!strcmp(key, "ca-file"))
			return set_path(&cl->ca_file, v);
		if (!strcmp(key, "cert-file"))
			return set_path(&cl->cert_file, v);
		if (!strcmp(key, "key-file"))
			return set_path(&cl->key_file, v);
		if (!strcmp(key, "insecure")) {
			if (strcmp(v, "true") && strcmp(v, "false")) {
				fprintf(stderr,
					"xenstored: %s: insecure = true or "
					"false, not \"%s\"\n",
					file, v);
				return -EINVAL;
			}
			cl->insecure = !strcmp(v, "true");
			return 0;
		}
		if (!strcmp(key, "election-timeout"))
			return number(key, v, &cl->election_timeout_ms);
		if (!strcmp(key, "heartbeat-timeout"))
			return number(key, v, &cl->heartbeat_timeout_ms);
		if (!strcmp(key, "commit-timeout"))
			return number(key, v, &cl->commit_timeout_ms);
		if (!strcmp(key, "adopt-after"))
			return number(key, v, &cl->adopt_after_s);
		if (!strcmp(key, "standalone-after"))
			return number(key, v, &cl->standalone_after_ms);
		if (!strcmp(key, "cold-start-wait"))
			return number(key, v, &cl->cold_start_wait_ms);
		if (!strcmp(key, "standalone")) {
			if (strcmp(v, "true") && strcmp(v, "false")) {
				fprintf(stderr,
					"xenstored: %s: standalone = true or "
					"false, not \"%s\"\n",
					file, v);
				return -EINVAL;
			}
			cl->standalone = !strcmp(v, "true");
			return 0;
		}
	}
	fprintf(stderr, "xenstored: %s: unknown key \"%s\" in [%s]\n", file,
		key, section);
	return -EINVAL;
}

/* After the file is read: is the cluster part complete and coherent? */
static int cluster_check(struct config *cfg, const char *file)
{
	struct cluster_cfg *cl = &cfg->cluster;

	if (!cl->enabled) {
		if (cl->n_members) {
			fprintf(stderr,
				"xenstored: %s: [cluster] needs a [member] "
				"section naming this member\n",
				file);
			return -EINVAL;
		}
		return 0;
	}
	if (!cl->self.id || !cl->self.name || !cl->self.raft_address ||
	    !cl->self.peer_address) {
		fprintf(stderr,
			"xenstored: %s: [member] needs id, name, raft-address "
			"and peer-address\n",
			file);
		return -EINVAL;
	}
	if (cl->heartbeat_timeout_ms == 0 ||
	    cl->heartbeat_timeout_ms >= cl->election_timeout_ms) {
		fprintf(stderr,
			"xenstored: %s: heartbeat-timeout must be above 0 and "
			"below election-timeout\n",
			file);
		return -EINVAL;
	}
	if (!!cl->ca_file + !!cl->cert_file + !!cl->key_file != 0 &&
	    !(cl->ca_file && cl->cert_file && cl->key_file)) {
		fprintf(stderr,
			"xenstored: %s: [cluster] needs all of ca-file, "
			"cert-file and key-file\n",
			file);
		return -EINVAL;
	}
	if (!cl->ca_file && !cl->insecure) {
		fprintf(stderr,
			"xenstored: %s: a cluster member needs TLS credentials "
			"([cluster] ca-file, cert-file, key-file: "
			"deploy/certs.sh makes them), or insecure = true "
			"(tests only: anyone who reaches the ports owns every "
			"host's tree)\n",
			file);
		return -EINVAL;
	}
	return 0;
}

/* A non-negative decimal int, as Xen's get_optval_int(). */
static int number(const char *what, const char *arg, unsigned int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (!*arg || *end || v < 0 || v > INT_MAX || errno) {
		fprintf(stderr, "xenstored: invalid value \"%s\" for %s\n",
			arg, what);
		return -EINVAL;
	}
	*out = (unsigned int)v;
	return 0;
}

static bool what_is(const char *arg, const char *what)
{
	size_t n = strlen(what);

	return strncmp(arg, what, n) == 0 && arg[n] == '=';
}

static int set_quota(struct config *cfg, const char *arg, bool soft)
{
	const char *eq = strchr(arg, '=');
	unsigned int v;

	if (!eq) {
		fprintf(stderr,
			"xenstored: quotas are given as <what>=<nb>: \"%s\"\n",
			arg);
		return -EINVAL;
	}
	if (number("--quota", eq + 1, &v))
		return -EINVAL;
	if (what_is(arg, "outstanding") && !soft)
		cfg->quotas.outstanding = v;
	else if (what_is(arg, "transaction-nodes") && !soft)
		cfg->quotas.store.transaction_nodes = v;
	else if (what_is(arg, "memory") && soft)
		cfg->quotas.soft_memory = v;
	else if (what_is(arg, "memory"))
		cfg->quotas.store.memory = v;
	else {
		fprintf(stderr, "xenstored: unknown quota \"%s\"\n", arg);
		return -EINVAL;
	}
	return 0;
}

static char *keep(const char *s)
{
	char *c = strdup(s);

	if (!c) {
		fprintf(stderr, "xenstored: out of memory\n");
		exit(1);
	}
	return c;
}

/* Apply one option (by its short code) with its argument. */
static int apply(struct config *cfg, int code, const char *arg,
		 const char *name)
{
	unsigned int v;

	switch (code) {
	case 'D':
	case 'R':
	case 'I':
	case 'K':
	case O_EVENT:
	case O_MASTER_DOMID:
		return 0;
	case O_PRIV_DOMID:
		if (number(name, arg, &v))
			return -EINVAL;
		if (v != 0)
			fprintf(stderr, "xenstored: --priv-domid %u: only "
					"dom0 is privileged here\n", v);
		return 0;
	case 'E':
		return number(name, arg, &cfg->quotas.store.nodes);
	case 'F':
		cfg->pid_file = keep(arg);
		return 0;
	case 'N':
		cfg->foreground = true;
		return 0;
	case 'P':
		cfg->output_pid = true;
		return 0;
	case 'S':
		return number(name, arg, &cfg->quotas.store.node_size);
	case 'T':
		cfg->trace_file = keep(arg);
		return 0;
	case 't':
		return number(name, arg, &cfg->quotas.transactions);
	case 'A':
		return number(name, arg, &cfg->quotas.store.permissions);
	case 'M':
		if (number(name, arg, &v))
			return -EINVAL;
		/* Xen: it can only be lowered. */
		cfg->quotas.store.path_max = v < 2048 ? v : 2048;
		return 0;
	case 'Q':
		return set_quota(cfg, arg, false);
	case 'q':
		return set_quota(cfg, arg, true);
	case 'w': {
		const char *eq = strchr(arg, '=');

		if (!eq || !what_is(arg, "watch-event")) {
			fprintf(stderr, "xenstored: unknown timeout \"%s\"\n",
				arg);
			return -EINVAL;
		}
		return number(name, eq + 1, &cfg->watch_event_timeout_s);
	}
	case 'V':
		cfg->verbose = true;
		return 0;
	case 'W':
		return number(name, arg, &cfg->quotas.watches);
	case 'U':
		fprintf(stderr,
			"xenstored: --live-update is not supported: this "
			"daemon keeps its state across a plain restart\n");
		return -EINVAL;
	case O_DATA_DIR:
		cfg->data_dir = keep(arg);
		return 0;
	case O_RUN_DIR:
		cfg->run_dir = keep(arg);
		return 0;
	case O_CONFIG:
		cfg->config_file = keep(arg);
		return 0;
	case O_LOG_FILE:
		cfg->log_file = keep(arg);
		return 0;
	case O_HOST_NAME:
		if (!hostname_valid(arg)) {
			fprintf(stderr,
				"xenstored: --host-name \"%s\" is not valid "
				"(letters, digits, '-', '_', '.'; at most %d)\n",
				arg, HOSTNAME_MAX);
			return -EINVAL;
		}
		cfg->host_name = keep(arg);
		return 0;
	case O_SNAP_THRESHOLD:
		if (number(name, arg, &cfg->snapshot_threshold))
			return -EINVAL;
		if (cfg->snapshot_threshold == 0) {
			fprintf(stderr, "xenstored: %s must be at least 1\n",
				name);
			return -EINVAL;
		}
		return 0;
	case O_SNAP_TRAILING:
		return number(name, arg, &cfg->snapshot_trailing);
	case O_READY_TIMEOUT:
		return number(name, arg, &cfg->ready_timeout_ms);
	case O_RING_BACKEND:
		if (strcmp(arg, "xen") && strcmp(arg, "none") &&
		    (strncmp(arg, "sim:", 4) || !arg[4])) {
			fprintf(stderr,
				"xenstored: %s: \"%s\" is not xen, sim:DIR or "
				"none\n",
				name, arg);
			return -EINVAL;
		}
		cfg->ring_backend = keep(arg);
		return 0;
	case O_GUEST_WRITE_RATE:
		return number(name, arg, &cfg->guest_write_rate);
	case O_MAX_CONNECTIONS:
		if (number(name, arg, &cfg->max_connections))
			return -EINVAL;
		if (cfg->max_connections == 0) {
			fprintf(stderr, "xenstored: %s must be at least 1\n",
				name);
			return -EINVAL;
		}
		return 0;
	case O_RESTORE:
		if (!*arg) {
			fprintf(stderr, "xenstored: %s wants a file\n", name);
			return -EINVAL;
		}
		cfg->restore_file = keep(arg);
		return 0;
	case O_FORCE_NEW_CLUSTER:
		cfg->force_new_cluster = true;
		return 0;
	case O_SOCKET_RO_GROUP:
		if (!*arg) {
			fprintf(stderr, "xenstored: %s wants a group\n", name);
			return -EINVAL;
		}
		cfg->socket_ro_group = keep(arg);
		return 0;
	default:
		return -EINVAL;
	}
}

static bool is_flag(int code)
{
	const struct option *o;

	for (o = long_opts; o->name; o++)
		if (o->val == code)
			return o->has_arg == no_argument;
	return false;
}

struct ini_ctx {
	struct config *cfg;
	const char *file;
	int rc;
};

static int ini_entry(void *user, const char *section, const char *key,
		     const char *value)
{
	struct ini_ctx *x = user;
	const struct option *o;

	if (!strcmp(section, "member") || !strcmp(section, "cluster")) {
		if (cluster_key(x->cfg, x->file, section, key, value)) {
			x->rc = -EINVAL;
			return 0;
		}
		return 1;
	}
	if (strcmp(section, "xenstored") != 0) {
		fprintf(stderr, "xenstored: %s: unknown section [%s]\n",
			x->file, section);
		x->rc = -EINVAL;
		return 0;
	}
	for (o = long_opts; o->name; o++) {
		if (strcmp(o->name, key) != 0)
			continue;
		/* one-off actions are never a setting */
		if (o->val == O_CONFIG || o->val == 'H' || o->val == 'U' ||
		    o->val == O_VERSION || o->val == O_RESTORE ||
		    o->val == O_FORCE_NEW_CLUSTER)
			break;
		if (is_flag(o->val)) {
			if (strcmp(value, "true") && strcmp(value, "yes") &&
			    strcmp(value, "1")) {
				if (!strcmp(value, "false") ||
				    !strcmp(value, "no") || !strcmp(value, "0"))
					return 1;
				fprintf(stderr,
					"xenstored: %s: %s wants true or "
					"false, not \"%s\"\n",
					x->file, key, value);
				x->rc = -EINVAL;
				return 0;
			}
		}
		if (apply(x->cfg, o->val, value, key)) {
			x->rc = -EINVAL;
			return 0;
		}
		return 1;
	}
	fprintf(stderr, "xenstored: %s: unknown key \"%s\" in [xenstored]\n",
		x->file, key);
	x->rc = -EINVAL;
	return 0;
}

/*
 * The config file names the credentials, the data directory and the
 * members: whoever may change it owns the daemon. Refused, as sshd's
 * StrictModes would: writable by group or others, or owned by someone
 * other than root or the daemon's user.
 */
static int config_file_safe(const char *file)
{
	struct stat st;

	if (stat(file, &st) < 0)
		return 0; /* ini_parse says it cannot be read */
	if ((st.st_mode & 0022) ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		fprintf(stderr,
			"xenstored: %s: refused: mode %04o, owner uid %u: "
			"whoever may change it controls this daemon "
			"(chown root and chmod go-w %s)\n",
			file, (unsigned)(st.st_mode & 07777),
			(unsigned)st.st_uid, file);
		return -EPERM;
	}
	return 0;
}

static int read_config_file(struct config *cfg, const char *file)
{
	struct ini_ctx x = {cfg, file, 0};
	int rc = config_file_safe(file);

	if (rc)
		return rc;
	rc = ini_parse(file, ini_entry, &x);

	if (rc < 0) {
		fprintf(stderr, "xenstored: cannot read config file %s\n",
			file);
		return -EINVAL;
	}
	if (rc > 0 && !x.rc) {
		fprintf(stderr, "xenstored: %s: syntax error on line %d\n",
			file, rc);
		return -EINVAL;
	}
	return x.rc ? x.rc : cluster_check(cfg, file);
}

/* "--entry-nb" for 'E', for error messages. */
static const char *option_name(int code)
{
	static char buf[64];
	const struct option *o;

	for (o = long_opts; o->name; o++) {
		if (o->val == code) {
			snprintf(buf, sizeof(buf), "--%s", o->name);
			return buf;
		}
	}
	return "option";
}

int options_parse(struct config *cfg, int argc, char **argv)
{
	const char *config_file = NULL;
	int opt, i, rc;

	/* The config file first, so the command line overrides it. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_file = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config_file = argv[i] + 9;
	}
	if (config_file) {
		rc = read_config_file(cfg, config_file);
		if (rc)
			return rc;
	}
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) !=
	       -1) {
		if (opt == 'H' || opt == 'h')
			return 1;
		if (opt == O_VERSION)
			return 2;
		if (opt == '?')
			return -EINVAL;
		rc = apply(cfg, opt, optarg ? optarg : "", option_name(opt));
		if (rc)
			return rc;
	}
	if (optind != argc) {
		fprintf(stderr, "xenstored: no arguments expected: \"%s\"\n",
			argv[optind]);
		return -EINVAL;
	}
	if (cfg->restore_file && cfg->force_new_cluster) {
		fprintf(stderr, "xenstored: --restore and --force-new-cluster "
				"both start a new cluster: give one\n");
		return -EINVAL;
	}
	return 0;
}
