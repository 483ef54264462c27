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

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
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
	O_CHECK_CONFIG,
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
	{"check-config", no_argument, NULL, O_CHECK_CONFIG},
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
"                             (default " XSR_DEFAULT_DATA_DIR ")\n"
"  --run-dir DIR              sockets DIR/socket and DIR/socket_ro; without\n"
"                             it the socket is $XENSTORED_PATH if set, else\n"
"                             $XENSTORED_RUNDIR/socket, else\n"
"                             /var/run/xenstored/socket (as Xen's daemon)\n"
"  --config FILE              read options from FILE (see \"The config\n"
"                             file\" below); the command line overrides it\n"
"%s"
"  --check-config             check the config file and the options (values,\n"
"                             addresses, that the addresses can be bound),\n"
"                             print \"ok\" or every error, exit 0 or 1;\n"
"                             creates nothing and starts nothing\n"
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
"\n"
"The config file: \"key = value\" lines in sections; '#' or ';' starts a\n"
"comment. Every bad value is reported with FILE:LINE and its key.\n"
"  [xenstored]                any long option above but --config,\n"
"                             --check-config, --restore, --force-new-cluster,\n"
"                             --help and --version, without its \"--\"\n"
"                             (\"data-dir = /var/lib/xenstored\"); an option\n"
"                             without a value takes true or false\n"
"  [member]                   this member of a cluster (without it the\n"
"                             daemon is a cluster of one, with no network):\n"
"    id = N                   its member id (1 to 2^63-1)\n"
"    name = HOST              its host's tree in the forest (as --host-name)\n"
"    raft-address = IP:PORT   where it listens for Raft ([IPv6]:PORT too)\n"
"    peer-address = IP:PORT   where it listens for peers (another port)\n"
"  [cluster]\n"
"    member = ID NAME RAFT-ADDRESS PEER-ADDRESS\n"
"                             one line per initial member; this member's\n"
"                             line must agree with [member]\n"
"    ca-file, cert-file, key-file = FILE\n"
"                             the cluster's CA(s), this member's certificate\n"
"                             and its key (mode 0600): TLS 1.3 on both ports\n"
"    insecure = true|false    no TLS at all (tests only; default false)\n"
"    election-timeout = MS    (200; randomised up to twice that)\n"
"    heartbeat-timeout = MS   (25; below election-timeout)\n"
"    commit-timeout = MS      how long a write waits for a quorum (5000)\n"
"    adopt-after = S          `domain adopt` without --fenced after S s of\n"
"                             silence (0, the default: never)\n"
"    standalone = true|false  own-tree writes without a quorum (true)\n"
"    standalone-after = MS    without a quorum that long first (3000)\n"
"    cold-start-wait = MS     how long a start waits for a quorum before\n"
"                             serving its own tree locally (10000)\n"
"\n"
"Under systemd (Type=notify): READY=1 once serving, STATUS= lines, the\n"
"watchdog (WatchdogSec=); with stderr the journal, lines keep their levels.\n"
"\n"
"Clients find the socket as with Xen's daemon: XENSTORED_PATH=SOCKET.\n"
"Both sockets are root's alone (mode 0600) unless --socket-ro-group.\n",
		*XSR_DEFAULT_CONFIG
			? "                             (default: " XSR_DEFAULT_CONFIG
			  ", if it\n"
			  "                             exists)\n"
			: "");
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

/* ---- Where a value came from ------------------------------------------ */

/*
 * The command line (file NULL), or a line of a config file and the key
 * on it: every complaint names it, so that a person can go and fix it.
 */
struct origin {
	const char *file;
	int line;	     /* 0: the file as a whole */
	const char *section; /* NULL: none */
	const char *key;     /* NULL: none */
};

static void bad(const struct origin *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void bad(const struct origin *o, const char *fmt, ...)
{
	va_list ap;

	fputs("xenstored: ", stderr);
	if (o && o->file) {
		fputs(o->file, stderr);
		if (o->line)
			fprintf(stderr, ":%d", o->line);
		fputs(": ", stderr);
		if (o->key)
			fprintf(stderr, "[%s] %s: ", o->section, o->key);
	}
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- [member] and [cluster] ------------------------------------------- */

static int number(const struct origin *o, const char *what, const char *arg,
		  unsigned int *out);
static char *keep(const char *s);

/*
 * "host:port" with a numeric IPv4 address or an [IPv6] one in brackets
 * (what the Raft and peer transports accept), port 1-65535; into *sa if
 * not NULL.
 */
bool options_address(const char *s, struct sockaddr_storage *sa)
{
	const char *colon = strrchr(s, ':');
	struct sockaddr_storage ss;
	char host[INET6_ADDRSTRLEN + 2], *end;
	size_t hl;
	long port;

	if (!sa)
		sa = &ss;
	memset(sa, 0, sizeof(*sa));
	if (!colon || colon == s)
		return false;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (!colon[1] || *end || errno || port <= 0 || port >= 65536)
		return false;
	hl = (size_t)(colon - s);
	if (hl >= sizeof(host))
		return false;
	memcpy(host, s, hl);
	host[hl] = '\0';
	if (host[0] == '[' && hl > 2 && host[hl - 1] == ']') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;

		host[hl - 1] = '\0';
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		return inet_pton(AF_INET6, host + 1, &in6->sin6_addr) == 1;
	} else {
		struct sockaddr_in *in = (struct sockaddr_in *)sa;

		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		return inet_pton(AF_INET, host, &in->sin_addr) == 1;
	}
}

static int member_field(const struct origin *o, const char *what,
			const char *v, char **out)
{
	if (!strcmp(what, "name") ? !hostname_valid(v)
				  : !options_address(v, NULL)) {
		if (!strcmp(what, "name"))
			bad(o, "bad name \"%s\" (letters, digits, '-', '_', "
			       "'.'; at most %d)", v, HOSTNAME_MAX);
		else
			bad(o, "bad %s \"%s\" (a numeric IPv4 address or an "
			       "[IPv6] one, ':', a port from 1 to 65535)",
			    what, v);
		return -EINVAL;
	}
	free(*out);
	*out = keep(v);
	return 0;
}

/* A file name of the config file (made absolute at start, main.c). */
static int set_path(const struct origin *o, char **out, const char *v)
{
	if (!*v) {
		bad(o, "wants a file name");
		return -EINVAL;
	}
	free(*out);
	*out = keep(v);
	return *out ? 0 : -ENOMEM;
}

static int parse_id(const struct origin *o, const char *v, uint64_t *id)
{
	char *end;
	unsigned long long n;

	errno = 0;
	n = strtoull(v, &end, 10);
	/* ids from 2^63 on name guests' ring sessions in the log */
	if (!*v || *end || errno || n == 0 || n >= (1ull << 63)) {
		bad(o, "bad member id \"%s\" (a number from 1 to 2^63-1)", v);
		return -EINVAL;
	}
	*id = n;
	return 0;
}

static int parse_bool(const struct origin *o, const char *v, bool *out)
{
	if (strcmp(v, "true") && strcmp(v, "false")) {
		bad(o, "%s = true or false, not \"%s\"", o->key, v);
		return -EINVAL;
	}
	*out = !strcmp(v, "true");
	return 0;
}

/* [cluster] member = ID NAME RAFT-ADDRESS PEER-ADDRESS */
static int add_member(struct cluster_cfg *cl, const struct origin *o,
		      const char *v)
{
	char id[32], name[80], raft[128], peer[128], extra[2];
	struct member_cfg m = {.line = o->line}, *arr;
	size_t i;

	if (sscanf(v, "%31s %79s %127s %127s %1s", id, name, raft, peer,
		   extra) != 4) {
		bad(o, "member = ID NAME RAFT-ADDRESS PEER-ADDRESS, not \"%s\"",
		    v);
		return -EINVAL;
	}
	if (parse_id(o, id, &m.id) ||
	    member_field(o, "name", name, &m.name) ||
	    member_field(o, "raft address", raft, &m.raft_address) ||
	    member_field(o, "peer address", peer, &m.peer_address)) {
		free(m.name);
		free(m.raft_address);
		free(m.peer_address);
		return -EINVAL;
	}
	for (i = 0; i < cl->n_members; i++) {
		const struct member_cfg *x = &cl->members[i];
		const char *same =
			x->id == m.id			? "id"
			: !strcmp(x->name, m.name)	? "name"
			: !strcmp(x->raft_address, m.raft_address) ||
			  !strcmp(x->peer_address, m.peer_address) ||
			  !strcmp(x->raft_address, m.peer_address) ||
			  !strcmp(x->peer_address, m.raft_address)
				? "address"
				: NULL;

		if (same) {
			bad(o, "member %llu (%s) is listed twice: the same %s "
			       "as on line %d",
			    (unsigned long long)m.id, m.name, same, x->line);
			free(m.name);
			free(m.raft_address);
			free(m.peer_address);
			return -EINVAL;
		}
	}
	if (!strcmp(m.raft_address, m.peer_address)) {
		bad(o, "member %llu: the raft and peer addresses must differ",
		    (unsigned long long)m.id);
		free(m.name);
		free(m.raft_address);
		free(m.peer_address);
		return -EINVAL;
	}
	arr = realloc(cl->members, (cl->n_members + 1) * sizeof(*arr));
	if (!arr)
		return -ENOMEM;
	cl->members = arr;
	arr[cl->n_members++] = m;
	return 0;
}

static int cluster_key(struct config *cfg, const struct origin *o,
		       const char *v)
{
	struct cluster_cfg *cl = &cfg->cluster;
	const char *key = o->key;

	if (!strcmp(o->section, "member")) {
		cl->enabled = true;
		if (!cl->self_line)
			cl->self_line = o->line;
		if (!strcmp(key, "id"))
			return parse_id(o, v, &cl->self.id);
		if (!strcmp(key, "name"))
			return member_field(o, "name", v, &cl->self.name);
		if (!strcmp(key, "raft-address")) {
			cl->self_address_line[0] = o->line;
			return member_field(o, "raft address", v,
					    &cl->self.raft_address);
		}
		if (!strcmp(key, "peer-address")) {
			cl->self_address_line[1] = o->line;
			return member_field(o, "peer address", v,
					    &cl->self.peer_address);
		}
	} else {
		if (!strcmp(key, "member"))
			return add_member(cl, o, v);
		if (!strcmp(key, "key")) {
			bad(o, "replaced by TLS certificates: ca-file, "
			       "cert-file and key-file (see deploy/certs.sh "
			       "and the README)");
			return -EINVAL;
		}
		if (!strcmp(key, "ca-file"))
			return set_path(o, &cl->ca_file, v);
		if (!strcmp(key, "cert-file"))
			return set_path(o, &cl->cert_file, v);
		if (!strcmp(key, "key-file"))
			return set_path(o, &cl->key_file, v);
		if (!strcmp(key, "insecure"))
			return parse_bool(o, v, &cl->insecure);
		if (!strcmp(key, "election-timeout"))
			return number(o, key, v, &cl->election_timeout_ms);
		if (!strcmp(key, "heartbeat-timeout"))
			return number(o, key, v, &cl->heartbeat_timeout_ms);
		if (!strcmp(key, "commit-timeout"))
			return number(o, key, v, &cl->commit_timeout_ms);
		if (!strcmp(key, "adopt-after"))
			return number(o, key, v, &cl->adopt_after_s);
		if (!strcmp(key, "standalone-after"))
			return number(o, key, v, &cl->standalone_after_ms);
		if (!strcmp(key, "cold-start-wait"))
			return number(o, key, v, &cl->cold_start_wait_ms);
		if (!strcmp(key, "standalone"))
			return parse_bool(o, v, &cl->standalone);
	}
	bad(o, "unknown key \"%s\" in [%s] (xenstored --help lists the keys)",
	    key, o->section);
	return -EINVAL;
}

/* [member]'s own entry against its [cluster] member = line, if any. */
static int self_check(struct cluster_cfg *cl, const struct origin *o)
{
	const struct member_cfg *self = &cl->self;
	size_t i;
	int rc = 0;

	if (!strcmp(self->raft_address, self->peer_address)) {
		bad(o, "[member] raft-address and peer-address must differ "
		       "(both %s)", self->raft_address);
		rc = -EINVAL;
	}
	for (i = 0; i < cl->n_members; i++) {
		const struct member_cfg *m = &cl->members[i];

		if (m->id != self->id) {
			if (!strcmp(m->name, self->name)) {
				bad(o, "[member] is id %llu, name %s; line %d "
				       "lists %s as member %llu",
				    (unsigned long long)self->id, self->name,
				    m->line, m->name,
				    (unsigned long long)m->id);
				rc = -EINVAL;
			}
			continue;
		}
		const char *what[3] = {"name", "raft-address",
				       "peer-address"};
		const char *mine[3] = {self->name, self->raft_address,
				       self->peer_address};
		const char *listed[3] = {m->name, m->raft_address,
					 m->peer_address};

		for (size_t k = 0; k < 3; k++) {
			if (!strcmp(mine[k], listed[k]))
				continue;
			bad(o, "[member] %s = %s, but line %d lists member "
			       "%llu with %s",
			    what[k], mine[k], m->line,
			    (unsigned long long)m->id, listed[k]);
			rc = -EINVAL;
		}
	}
	return rc;
}

/* After the file is read: is the cluster part complete and coherent? */
static int cluster_check(struct config *cfg, const char *file)
{
	struct cluster_cfg *cl = &cfg->cluster;
	struct origin o = {.file = file, .line = cl->self_line};
	int rc = 0;

	if (!cl->enabled) {
		if (cl->n_members) {
			o.line = cl->members[0].line;
			bad(&o, "[cluster] needs a [member] section naming "
				"this member");
			return -EINVAL;
		}
		return 0;
	}
	if (!cl->self.id || !cl->self.name || !cl->self.raft_address ||
	    !cl->self.peer_address) {
		bad(&o, "[member] needs id, name, raft-address and "
			"peer-address");
		return -EINVAL;
	}
	if (self_check(cl, &o))
		rc = -EINVAL;
	o.line = 0;
	if (cl->heartbeat_timeout_ms == 0 ||
	    cl->heartbeat_timeout_ms >= cl->election_timeout_ms) {
		bad(&o, "[cluster] heartbeat-timeout (%u) must be above 0 and "
			"below election-timeout (%u)",
		    cl->heartbeat_timeout_ms, cl->election_timeout_ms);
		rc = -EINVAL;
	}
	if (!!cl->ca_file + !!cl->cert_file + !!cl->key_file != 0 &&
	    !(cl->ca_file && cl->cert_file && cl->key_file)) {
		bad(&o, "[cluster] needs all of ca-file, cert-file and "
			"key-file");
		rc = -EINVAL;
	} else if (!cl->ca_file && !cl->insecure) {
		bad(&o, "a cluster member needs TLS credentials ([cluster] "
			"ca-file, cert-file, key-file: deploy/certs.sh makes "
			"them), or insecure = true (tests only: anyone who "
			"reaches the ports owns every host's tree)");
		rc = -EINVAL;
	}
	return rc;
}

/* A non-negative decimal int, as Xen's get_optval_int(). */
static int number(const struct origin *o, const char *what, const char *arg,
		  unsigned int *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (!*arg || *end || v < 0 || v > INT_MAX || errno) {
		bad(o, "invalid value \"%s\" for %s (a number from 0 to %d)",
		    arg, what, INT_MAX);
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

static int set_quota(const struct origin *o, struct config *cfg,
		     const char *arg, bool soft)
{
	const char *eq = strchr(arg, '=');
	unsigned int v;

	if (!eq) {
		bad(o, "quotas are given as <what>=<nb>: \"%s\"", arg);
		return -EINVAL;
	}
	if (number(o, soft ? "--quota-soft" : "--quota", eq + 1, &v))
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
		bad(o, "unknown quota \"%s\"", arg);
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

/* A string setting given again replaces the earlier one. */
static void keep_in(const char **out, const char *arg)
{
	free((char *)*out);
	*out = keep(arg);
}

/* Apply one option (by its short code) with its argument. */
static int apply(const struct origin *o, struct config *cfg, int code,
		 const char *arg, const char *name)
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
		if (number(o, name, arg, &v))
			return -EINVAL;
		if (v != 0)
			bad(o, "--priv-domid %u: only dom0 is privileged "
			       "here", v);
		return 0;
	case 'E':
		return number(o, name, arg, &cfg->quotas.store.nodes);
	case 'F':
		keep_in(&cfg->pid_file, arg);
		return 0;
	case 'N':
		cfg->foreground = true;
		return 0;
	case 'P':
		cfg->output_pid = true;
		return 0;
	case 'S':
		return number(o, name, arg, &cfg->quotas.store.node_size);
	case 'T':
		keep_in(&cfg->trace_file, arg);
		return 0;
	case 't':
		return number(o, name, arg, &cfg->quotas.transactions);
	case 'A':
		return number(o, name, arg, &cfg->quotas.store.permissions);
	case 'M':
		if (number(o, name, arg, &v))
			return -EINVAL;
		/* Xen: it can only be lowered. */
		cfg->quotas.store.path_max = v < 2048 ? v : 2048;
		return 0;
	case 'Q':
		return set_quota(o, cfg, arg, false);
	case 'q':
		return set_quota(o, cfg, arg, true);
	case 'w': {
		const char *eq = strchr(arg, '=');

		if (!eq || !what_is(arg, "watch-event")) {
			bad(o, "unknown timeout \"%s\"", arg);
			return -EINVAL;
		}
		return number(o, name, eq + 1, &cfg->watch_event_timeout_s);
	}
	case 'V':
		cfg->verbose = true;
		return 0;
	case 'W':
		return number(o, name, arg, &cfg->quotas.watches);
	case 'U':
		bad(o, "--live-update is not supported: this daemon keeps its "
		       "state across a plain restart");
		return -EINVAL;
	case O_DATA_DIR:
	case O_RUN_DIR:
	case O_LOG_FILE:
		if (!*arg) {
			bad(o, "%s wants a path", name);
			return -EINVAL;
		}
		keep_in(code == O_DATA_DIR  ? &cfg->data_dir
			: code == O_RUN_DIR ? &cfg->run_dir
					    : &cfg->log_file,
			arg);
		return 0;
	case O_CONFIG:
		keep_in(&cfg->config_file, arg);
		return 0;
	case O_CHECK_CONFIG:
		cfg->check_config = true;
		return 0;
	case O_HOST_NAME:
		if (!hostname_valid(arg)) {
			bad(o, "--host-name \"%s\" is not valid (letters, "
			       "digits, '-', '_', '.'; at most %d)",
			    arg, HOSTNAME_MAX);
			return -EINVAL;
		}
		keep_in(&cfg->host_name, arg);
		return 0;
	case O_SNAP_THRESHOLD:
		if (number(o, name, arg, &cfg->snapshot_threshold))
			return -EINVAL;
		if (cfg->snapshot_threshold == 0) {
			bad(o, "%s must be at least 1", name);
			return -EINVAL;
		}
		return 0;
	case O_SNAP_TRAILING:
		return number(o, name, arg, &cfg->snapshot_trailing);
	case O_READY_TIMEOUT:
		return number(o, name, arg, &cfg->ready_timeout_ms);
	case O_RING_BACKEND:
		if (strcmp(arg, "xen") && strcmp(arg, "none") &&
		    (strncmp(arg, "sim:", 4) || !arg[4])) {
			bad(o, "%s: \"%s\" is not xen, sim:DIR or none", name,
			    arg);
			return -EINVAL;
		}
		cfg->ring_backend = keep(arg);
		return 0;
	case O_GUEST_WRITE_RATE:
		return number(o, name, arg, &cfg->guest_write_rate);
	case O_MAX_CONNECTIONS:
		if (number(o, name, arg, &cfg->max_connections))
			return -EINVAL;
		if (cfg->max_connections == 0) {
			bad(o, "%s must be at least 1", name);
			return -EINVAL;
		}
		return 0;
	case O_RESTORE:
		if (!*arg) {
			bad(o, "%s wants a file", name);
			return -EINVAL;
		}
		keep_in(&cfg->restore_file, arg);
		return 0;
	case O_FORCE_NEW_CLUSTER:
		cfg->force_new_cluster = true;
		return 0;
	case O_SOCKET_RO_GROUP:
		if (!*arg) {
			bad(o, "%s wants a group", name);
			return -EINVAL;
		}
		keep_in(&cfg->socket_ro_group, arg);
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

/* Reading the file: where inih is, and what went wrong so far. */
struct ini_ctx {
	struct config *cfg;
	FILE *f;
	const char *file;
	int line;	 /* of the text inih has last read */
	int next_line;	 /* of the next text it reads */
	int errors;	 /* values refused */
};

/* inih's reader: fgets, counting lines (a long one comes in pieces). */
static char *ini_read(char *str, int num, void *stream)
{
	struct ini_ctx *x = stream;
	char *s = fgets(str, num, x->f);

	x->line = x->next_line;
	if (s && strchr(s, '\n'))
		x->next_line++;
	return s;
}

static int ini_entry(void *user, const char *section, const char *key,
		     const char *value)
{
	struct ini_ctx *x = user;
	struct origin o = {x->file, x->line, section, key};
	const struct option *opt;
	int rc = -EINVAL;

	if (!strcmp(section, "member") || !strcmp(section, "cluster")) {
		rc = cluster_key(x->cfg, &o, value);
		goto out;
	}
	if (strcmp(section, "xenstored") != 0) {
		o.section = o.key = NULL;
		bad(&o, "unknown section [%s] (sections: [xenstored], "
			"[member], [cluster])", section);
		goto out;
	}
	for (opt = long_opts; opt->name; opt++) {
		if (strcmp(opt->name, key) != 0)
			continue;
		/* one-off actions are never a setting */
		if (opt->val == O_CONFIG || opt->val == 'H' ||
		    opt->val == 'U' || opt->val == O_VERSION ||
		    opt->val == O_RESTORE || opt->val == O_FORCE_NEW_CLUSTER ||
		    opt->val == O_CHECK_CONFIG)
			break;
		if (is_flag(opt->val)) {
			if (!strcmp(value, "false") || !strcmp(value, "no") ||
			    !strcmp(value, "0")) {
				rc = 0;
				goto out;
			}
			if (strcmp(value, "true") && strcmp(value, "yes") &&
			    strcmp(value, "1")) {
				bad(&o, "%s wants true or false, not \"%s\"",
				    key, value);
				goto out;
			}
		}
		rc = apply(&o, x->cfg, opt->val, value, key);
		goto out;
	}
	bad(&o, "unknown key \"%s\" in [xenstored] (the long options of "
		"xenstored --help)", key);
out:
	if (rc)
		x->errors++;
	/* go on: every bad value of the file is reported at once */
	return 1;
}

/*
 * The config file names the credentials, the data directory and the
 * members: whoever may change it owns the daemon. Refused, as sshd's
 * StrictModes would: writable by group or others, or owned by someone
 * other than root or the daemon's user.
 */
static int config_file_safe(FILE *f, const char *file)
{
	struct stat st;

	if (fstat(fileno(f), &st) < 0)
		return 0;
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
	struct ini_ctx x = {.cfg = cfg, .file = file, .next_line = 1};
	int rc;

	x.f = fopen(file, "re");
	if (!x.f) {
		fprintf(stderr, "xenstored: cannot read config file %s: %s\n",
			file, strerror(errno));
		return -EINVAL;
	}
	rc = config_file_safe(x.f, file);
	if (!rc)
		rc = ini_parse_stream(ini_read, &x, ini_entry, &x);
	fclose(x.f);
	if (rc < 0)
		return rc == -EPERM ? rc : -EINVAL;
	/* the handler always goes on: inih's error is a line it could not
	 * parse (its count of reads; ours match unless a line is too long) */
	if (rc > 0) {
		fprintf(stderr,
			"xenstored: %s:%d: syntax error (not \"[section]\", "
			"\"key = value\" or a comment, or too long a line)\n",
			file, rc);
		x.errors++;
	}
	if (cluster_check(cfg, file))
		x.errors++;
	return x.errors ? -EINVAL : 0;
}

/* "--entry-nb" for 'E', for error messages. */
static const char *option_name(int code, char *buf, size_t len)
{
	const struct option *o;

	for (o = long_opts; o->name; o++) {
		if (o->val == code) {
			snprintf(buf, len, "--%s", o->name);
			return buf;
		}
	}
	return "option";
}

const char *options_default_config(void)
{
	return XSR_DEFAULT_CONFIG;
}

const char *options_default_data_dir(void)
{
	return XSR_DEFAULT_DATA_DIR;
}

int options_parse(struct config *cfg, int argc, char **argv)
{
	const char *config_file = NULL;
	char name[64];
	int opt, i, rc = 0;

	/* The config file first, so the command line overrides it. */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			config_file = argv[i + 1];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			config_file = argv[i] + 9;
	}
	/* no --config: the packaged default, if it is there */
	if (!config_file && *XSR_DEFAULT_CONFIG &&
	    access(XSR_DEFAULT_CONFIG, F_OK) == 0)
		config_file = XSR_DEFAULT_CONFIG;
	if (config_file) {
		rc = read_config_file(cfg, config_file);
		if (!cfg->config_file)
			cfg->config_file = keep(config_file);
	}
	/* and the command line, whatever the file said: every error at once */
	optind = 1;
	while ((opt = getopt_long(argc, argv, short_opts, long_opts, NULL)) !=
	       -1) {
		if (opt == 'H' || opt == 'h')
			return 1;
		if (opt == O_VERSION)
			return 2;
		if (opt == '?') {
			rc = -EINVAL;
			continue;
		}
		if (apply(NULL, cfg, opt, optarg ? optarg : "",
			  option_name(opt, name, sizeof(name))))
			rc = -EINVAL;
	}
	if (optind != argc) {
		fprintf(stderr, "xenstored: no arguments expected: \"%s\"\n",
			argv[optind]);
		rc = -EINVAL;
	}
	if (cfg->restore_file && cfg->force_new_cluster) {
		fprintf(stderr, "xenstored: --restore and --force-new-cluster "
				"both start a new cluster: give one\n");
		rc = -EINVAL;
	}
	return rc;
}
