/*
 * admin/xsadm.c: the admin CLI of the replicated xenstored. Talks to the
 * local daemon over its socket with XS_CONTROL "cluster ..." and
 * "domain ..." (privileged clients only); the daemon answers JSON, printed
 * here as tables for people or passed through with --json for scripts.
 *
 * Exit codes: 0 done; 1 the daemon refused or failed (or verify found
 * members that disagree); 2 bad usage; 3 the daemon cannot be reached.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "wire/xs_msg.h"
#include "version.h"

#define EXIT_FAILED 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

struct adm {
	const char *socket;
	bool json;
	int fd;
	unsigned wait_ms; /* for an answer; 0: as long as it takes */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: xsadm [--socket PATH] [--json] COMMAND\n"
"\n"
"Steer a replicated xenstored cluster through the local daemon.\n"
"\n"
"Commands:\n"
"  cluster status                  the members of the configuration: role,\n"
"                                  state, term, commit, applied and last\n"
"                                  snapshot index, data directory bytes,\n"
"                                  version, reachability, last error; exit 1\n"
"                                  when there is no leader (--json: exit 0,\n"
"                                  \"leader\": 0)\n"
"  cluster health [--timeout MS]   exit 0 only if there is a leader, every\n"
"                                  voter answers within MS (default 1000)\n"
"                                  and this member has applied what the\n"
"                                  leader had committed; else exit 1 and\n"
"                                  one line saying why (--json: an object\n"
"                                  with healthy, reason, leader, members)\n"
"  cluster add ID ADDRESS [--peer PEER-ADDRESS] [--name NAME]\n"
"                                  add member ID as a standby (it replicates\n"
"                                  and serves its host, but does not vote)\n"
"                                  whose Raft address is ADDRESS; its peer\n"
"                                  address defaults to ADDRESS's port + 1,\n"
"                                  its name to host<ID>; start its daemon\n"
"  cluster remove ID               remove member ID from the configuration\n"
"                                  (and from the members table)\n"
"  cluster promote ID              make ID a voter (after catching up)\n"
"  cluster demote ID               voter -> standby, standby -> spare (a\n"
"                                  spare gets no log: its host stops being\n"
"                                  updated)\n"
"  cluster transfer [ID]           hand leadership to ID (or any voter)\n"
"  cluster snapshot                take a log snapshot on this member now\n"
"  cluster verify                  digest every member's state at one log\n"
"                                  index and compare (exit 1 if they differ)\n"
"  cluster hosts                   the host trees in the replicated forest\n"
"  cluster backup FILE             the whole replicated state (every host's\n"
"                                  tree, domains, quotas, members) at one log\n"
"                                  index, written by the daemon to FILE (mode\n"
"                                  0600, checksummed); `xenstored --restore\n"
"                                  FILE` starts a new cluster from it\n"
"  cluster recover                 on a member whose quorum is lost for good:\n"
"                                  it restarts as the only voter of a new\n"
"                                  cluster with its whole log; entries the\n"
"                                  lost majority committed that it never\n"
"                                  received are gone (README, \"Recovery\")\n"
"  domain migrate HOST:DOMID HOST:DOMID [--merge] [--subtree PATH]...\n"
"                                  move a domain's store state (its\n"
"                                  /local/domain/<id>, the /vm/<uuid> its vm\n"
"                                  key names, /libxl/<id>, and each PATH) to\n"
"                                  another host and/or domid, in one log\n"
"                                  entry; the source host must be alive.\n"
"                                  --merge: the destination may exist (what\n"
"                                  is there stays, the rest is added).\n"
"                                  Both answer once the destination host's\n"
"                                  member has applied the move\n"
"  domain adopt DEADHOST:DOMID HOST:DOMID [--merge] [--subtree PATH]...\n"
"               [--fenced]         the same, for a host whose daemon is down\n"
"                                  (restart its domains elsewhere); refused\n"
"                                  while it answers. A host that does not\n"
"                                  answer may be cut off, not dead, and still\n"
"                                  run the domain: two live copies. So it is\n"
"                                  refused unless no member has heard from\n"
"                                  the host for [cluster] adopt-after seconds\n"
"                                  (default 0: never), or --fenced: you\n"
"                                  assert DEADHOST is fenced (powered off,\n"
"                                  its domains destroyed); logged as FORCED\n"
"  domain list [HOST]              the domains of every host (or one)\n"
"  ls HOST:PATH                    list any host's tree (default PATH /)\n"
"  read HOST:PATH                  read one node of any host's tree\n"
"\n"
"Options:\n"
"  --socket PATH   the daemon's socket (default $XENSTORED_PATH, else\n"
"                  /var/run/xenstored/socket)\n"
"  --json          print the daemon's JSON answer (for scripts)\n"
"  --version       print the version (xenstored-raft's) and exit\n"
"  -h, --help      this help\n"
"\n"
"Exit codes: 0 done, 1 refused or failed (or unhealthy, or no leader),\n"
"2 bad usage, 3 daemon unreachable (or silent past health's timeout).\n");
}

static void die(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3), noreturn));

static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fputs("xsadm: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

static void connect_daemon(struct adm *a)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (strlen(a->socket) >= sizeof(sa.sun_path))
		die(EXIT_USAGE, "socket path too long: %s", a->socket);
	strcpy(sa.sun_path, a->socket);
	a->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (a->fd < 0 || connect(a->fd, (struct sockaddr *)&sa, sizeof(sa)))
		die(EXIT_UNREACHABLE, "cannot reach xenstored at %s: %s",
		    a->socket, strerror(errno));
	if (a->wait_ms) {
		struct timeval tv = {.tv_sec = a->wait_ms / 1000,
				     .tv_usec = (a->wait_ms % 1000) * 1000};

		(void)setsockopt(a->fd, SOL_SOCKET, SO_RCVTIMEO, &tv,
				 sizeof(tv));
	}
}

static void write_all(int fd, const void *p, size_t n)
{
	const char *c = p;

	while (n) {
		ssize_t w = write(fd, c, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			die(EXIT_UNREACHABLE, "write to xenstored: %s",
			    strerror(errno));
		c += w;
		n -= (size_t)w;
	}
}

static void read_all(int fd, void *p, size_t n)
{
	char *c = p;

	while (n) {
		ssize_t r = read(fd, c, n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			die(EXIT_UNREACHABLE, "xenstored did not answer in time");
		if (r <= 0)
			die(EXIT_UNREACHABLE, "xenstored closed the connection");
		c += r;
		n -= (size_t)r;
	}
}

/* CONTROL "cluster" argv... -> the parsed JSON answer (never NULL). */
static json_object *control_in(struct adm *a, const char *group,
			       const char **argv, int argc);

static json_object *control(struct adm *a, const char **argv, int argc)
{
	return control_in(a, "cluster", argv, argc);
}

static json_object *control_in(struct adm *a, const char *group,
			       const char **argv, int argc)
{
	char payload[WIRE_PAYLOAD_MAX + 1], reply[WIRE_PAYLOAD_MAX + 1];
	uint8_t raw[WIRE_HDR_SIZE];
	struct wire_hdr h = {WIRE_CONTROL, 0, 0, 0};
	size_t len = 0;
	json_object *o;
	int i;

	len = strlen(group) + 1;
	memcpy(payload, group, len);
	for (i = 0; i < argc; i++) {
		size_t n = strlen(argv[i]) + 1;

		if (len + n > WIRE_PAYLOAD_MAX)
			die(EXIT_USAGE, "arguments too long");
		memcpy(payload + len, argv[i], n);
		len += n;
	}
	h.len = (uint32_t)len;
	wire_hdr_encode(&h, raw);
	write_all(a->fd, raw, sizeof(raw));
	write_all(a->fd, payload, len);
	for (;;) {
		read_all(a->fd, raw, sizeof(raw));
		wire_hdr_decode(raw, &h);
		if (h.len > WIRE_PAYLOAD_MAX)
			die(EXIT_UNREACHABLE, "bad reply from xenstored");
		read_all(a->fd, reply, h.len);
		reply[h.len] = '\0';
		if (h.type != WIRE_WATCH_EVENT)
			break;
	}
	if (h.type == WIRE_ERROR) {
		if (strcmp(reply, "EACCES") == 0)
			die(EXIT_FAILED, "xenstored refused: privileged "
					 "clients only (not the read-only "
					 "socket)");
		if (strcmp(reply, "EINVAL") == 0)
			die(EXIT_FAILED, "xenstored does not know \"%s\" "
					 "commands (not this daemon?)",
			    group);
		die(EXIT_FAILED, "xenstored answered %s", reply);
	}
	o = json_tokener_parse(reply);
	if (!o)
		die(EXIT_FAILED, "unreadable answer from xenstored: %s", reply);
	return o;
}

static const char *str(json_object *o, const char *key)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return "";
	return json_object_get_string(v);
}

static long long num(json_object *o, const char *key, long long def)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v))
		return def;
	return json_object_get_int64(v);
}

static bool flag(json_object *o, const char *key)
{
	json_object *v;

	return json_object_object_get_ex(o, key, &v) &&
	       json_object_get_boolean(v);
}

/* Print o for --json, or fail with its error; true if it was ok. */
static bool check(struct adm *a, json_object *o, bool print_json)
{
	bool ok = flag(o, "ok");

	if (a->json && print_json)
		printf("%s\n", json_object_to_json_string_ext(
				       o, JSON_C_TO_STRING_PRETTY |
						  JSON_C_TO_STRING_SPACED));
	if (!ok && !a->json)
		fprintf(stderr, "xsadm: %s\n", str(o, "error"));
	return ok;
}

/*
 * For a command that prints a table from o: true if there is nothing more
 * to print (o failed, or --json printed it); then o is freed and *rc is
 * the exit status.
 */
static bool answered(struct adm *a, json_object *o, int *rc)
{
	if (check(a, o, true) && !a->json)
		return false;
	*rc = flag(o, "ok") ? 0 : EXIT_FAILED;
	json_object_put(o);
	return true;
}

/* Unix seconds as local time, or "-" for 0. */
static void format_time(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (t <= 0 || !localtime_r(&tt, &tm) ||
	    !strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm))
		snprintf(buf, len, "-");
}

static int cmd_status(struct adm *a)
{
	json_object *o = control(a, (const char *[]){"status"}, 1), *arr = NULL;
	const char *leader_name = "?";
	long long leader;
	size_t i, n;
	int rc;

	if (answered(a, o, &rc))
		return rc;
	leader = num(o, "leader", 0);
	json_object_object_get_ex(o, "members", &arr);
	n = arr ? json_object_array_length(arr) : 0;
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(arr, i);

		if (leader && num(m, "id", 0) == leader)
			leader_name = str(m, "name");
	}
	if (leader)
		printf("%zu member%s, leader %lld (%s), term %lld, as seen by "
		       "member %lld\n\n",
		       n, n == 1 ? "" : "s", leader, leader_name,
		       num(o, "term", 0), num(o, "member", 0));
	else
		printf("%zu member%s, NO LEADER (no quorum?), as seen by "
		       "member %lld\n\n",
		       n, n == 1 ? "" : "s", num(o, "member", 0));
	printf("%-4s %-12s %-8s %-11s %6s %9s %9s %9s %12s %-9s %-9s %s\n",
	       "ID", "NAME", "ROLE", "STATE", "TERM", "COMMIT", "APPLIED",
	       "SNAPSHOT", "DATA BYTES", "VERSION", "REACHABLE",
	       "RAFT ADDRESS");
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		bool up = flag(m, "reachable");
		char term[24] = "-", commit[24] = "-", applied[24] = "-",
		     snap[24] = "-", bytes[24] = "-";

		if (up) {
			snprintf(term, sizeof(term), "%lld", num(m, "term", 0));
			snprintf(commit, sizeof(commit), "%lld",
				 num(m, "commit", 0));
			snprintf(applied, sizeof(applied), "%lld",
				 num(m, "applied", 0));
			snprintf(snap, sizeof(snap), "%lld",
				 num(m, "snapshot", 0));
			snprintf(bytes, sizeof(bytes), "%lld",
				 num(m, "data_bytes", 0));
		}
		printf("%-4lld %-12s %-8s %-11s %6s %9s %9s %9s %12s %-9s %-9s "
		       "%s\n",
		       num(m, "id", 0), str(m, "name"), str(m, "role"),
		       up ? str(m, "state") : "-", term, commit, applied, snap,
		       bytes, up && *str(m, "version") ? str(m, "version") : "-",
		       up ? "yes" : "no", str(m, "raft"));
	}
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		char when[32];

		if (!flag(m, "reachable") || !num(m, "no_quorum_since", 0))
			continue;
		format_time(num(m, "no_quorum_since", 0), when, sizeof(when));
		printf("\nmember %lld (%s): no quorum since %s: serving own "
		       "tree locally\n",
		       num(m, "id", 0), str(m, "name"), when);
	}
	printf("\nLast error per member:\n");
	for (i = 0; i < n; i++) {
		json_object *m = json_object_array_get_idx(arr, i);
		char when[32];

		format_time(num(m, "last_error_time", 0), when, sizeof(when));
		if (!flag(m, "reachable"))
			printf("%-4lld %-12s (did not answer)\n",
			       num(m, "id", 0), str(m, "name"));
		else if (!*str(m, "last_error"))
			printf("%-4lld %-12s none\n", num(m, "id", 0),
			       str(m, "name"));
		else
			printf("%-4lld %-12s %s %s\n", num(m, "id", 0),
			       str(m, "name"), when, str(m, "last_error"));
	}
	json_object_put(o);
	/* a monitor reading the table should not miss it */
	return leader ? 0 : EXIT_FAILED;
}

/* health [--timeout MS] */
static int cmd_health(struct adm *a, int argc, char **argv)
{
	const char *timeout = "1000";
	json_object *o;
	bool healthy;
	char *end;
	unsigned long ms;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--timeout") && i + 1 < argc)
			timeout = argv[++i];
		else if (!strcmp(argv[i], "--json"))
			a->json = true;
		else
			die(EXIT_USAGE, "usage: cluster health [--timeout MS] "
					"[--json]");
	}
	ms = strtoul(timeout, &end, 10);
	if (!*timeout || *end || ms == 0 || ms > 60000)
		die(EXIT_USAGE, "--timeout is 1 to 60000 ms, not \"%s\"",
		    timeout);
	/* the daemon answers by then; a stopped daemon must not hang us */
	a->wait_ms = (unsigned)ms + 5000;
	connect_daemon(a);
	o = control(a, (const char *[]){"health", timeout}, 2);
	if (!check(a, o, false)) {
		if (a->json)
			printf("%s\n", json_object_to_json_string_ext(
					       o, JSON_C_TO_STRING_PRETTY |
							  JSON_C_TO_STRING_SPACED));
		json_object_put(o);
		return EXIT_FAILED;
	}
	healthy = flag(o, "healthy");
	if (a->json) {
		/* the verdict alone: {healthy, reason, leader, members, ...} */
		json_object_object_del(o, "ok");
		printf("%s\n", json_object_to_json_string_ext(
				       o, JSON_C_TO_STRING_PRETTY |
						  JSON_C_TO_STRING_SPACED));
	} else if (healthy) {
		printf("healthy: leader %lld, every voter answered within "
		       "%s ms, this member (%lld) applied %lld\n",
		       num(o, "leader", 0), timeout, num(o, "member", 0),
		       num(o, "applied", 0));
	} else {
		printf("unhealthy: %s\n", str(o, "reason"));
	}
	json_object_put(o);
	return healthy ? 0 : EXIT_FAILED;
}

static int simple(struct adm *a, const char **argv, int argc,
		  const char *done)
{
	json_object *o = control(a, argv, argc);
	bool ok = check(a, o, true);

	if (ok && !a->json && done)
		printf("%s\n", done);
	json_object_put(o);
	return ok ? 0 : EXIT_FAILED;
}

static int cmd_verify(struct adm *a)
{
	json_object *o = control(a, (const char *[]){"verify"}, 1), *arr;
	bool agree;
	size_t i, n;

	if (!check(a, o, true)) {
		json_object_put(o);
		return EXIT_FAILED;
	}
	agree = flag(o, "agree");
	if (!a->json) {
		json_object_object_get_ex(o, "members", &arr);
		n = arr ? json_object_array_length(arr) : 0;
		printf("%-4s %-12s %-12s %s\n", "ID", "NAME", "STATUS",
		       "DIGEST AT INDEX");
		for (i = 0; i < n; i++) {
			json_object *m = json_object_array_get_idx(arr, i);

			printf("%-4lld %-12s %-12s %s\n", num(m, "id", 0),
			       str(m, "name"), str(m, "status"),
			       str(m, "digest"));
		}
		printf("\n%s at log index %lld\n",
		       agree ? "all members agree" : "MEMBERS DISAGREE "
						     "(or did not answer)",
		       num(o, "index", 0));
	}
	json_object_put(o);
	return agree ? 0 : EXIT_FAILED;
}

/* HOST:PATH -> host and path (path defaults to /). */
static void split_target(const char *arg, char *host, size_t hl,
			 const char **path)
{
	const char *colon = strchr(arg, ':');
	size_t n;

	if (!colon || colon == arg)
		die(EXIT_USAGE, "expected HOST:PATH, not \"%s\"", arg);
	n = (size_t)(colon - arg);
	if (n >= hl)
		die(EXIT_USAGE, "host name too long");
	memcpy(host, arg, n);
	host[n] = '\0';
	*path = colon[1] ? colon + 1 : "/";
	if (**path != '/')
		die(EXIT_USAGE, "the path must be absolute: \"%s\"", *path);
}

static void print_value(const char *v, int len)
{
	int i;

	putchar('"');
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c >= 0x20 && c < 0x7f)
			putchar(c);
		else
			printf("\\x%02x", c);
	}
	putchar('"');
}

static int cmd_read(struct adm *a, const char *target)
{
	char host[80];
	const char *path;
	json_object *o, *v;

	split_target(target, host, sizeof(host), &path);
	o = control(a, (const char *[]){"read", host, path}, 3);
	if (!check(a, o, true)) {
		json_object_put(o);
		return EXIT_FAILED;
	}
	if (!a->json && json_object_object_get_ex(o, "value", &v)) {
		fwrite(json_object_get_string(v), 1,
		       (size_t)json_object_get_string_len(v), stdout);
		putchar('\n');
	}
	json_object_put(o);
	return 0;
}

/* Children of host:path, all pages; appended to out (a JSON array). */
static bool children(struct adm *a, const char *host, const char *path,
		     json_object *out)
{
	long long off = 0;

	for (;;) {
		char offs[24];
		json_object *o, *arr;
		size_t i;

		snprintf(offs, sizeof(offs), "%lld", off);
		o = control(a, (const char *[]){"dir", host, path, offs}, 4);
		if (!flag(o, "ok")) {
			fprintf(stderr, "xsadm: %s\n", str(o, "error"));
			json_object_put(o);
			return false;
		}
		json_object_object_get_ex(o, "children", &arr);
		for (i = 0; arr && i < json_object_array_length(arr); i++)
			json_object_array_add(
				out, json_object_get(
					     json_object_array_get_idx(arr, i)));
		off = num(o, "next", -1);
		json_object_put(o);
		if (off < 0)
			return true;
	}
}

/* Depth-first listing, as xenstore-ls prints it; JSON tree with --json. */
static bool ls_node(struct adm *a, const char *host, const char *path,
		    int depth, json_object *jparent)
{
	json_object *kids = json_object_new_array(), *o, *v, *jn = NULL;
	bool ok = true;
	size_t i;

	o = control(a, (const char *[]){"read", host, path}, 3);
	if (!flag(o, "ok")) {
		fprintf(stderr, "xsadm: %s\n", str(o, "error"));
		json_object_put(o);
		json_object_put(kids);
		return false;
	}
	json_object_object_get_ex(o, "value", &v);
	if (a->json) {
		jn = json_object_new_object();
		json_object_object_add(jn, "path",
				       json_object_new_string(path));
		json_object_object_add(jn, "value", json_object_get(v));
		json_object_array_add(jparent, jn);
	} else if (depth > 0) {
		const char *name = strrchr(path, '/') + 1;

		printf("%*s%s = ", depth - 1, "", name);
		print_value(json_object_get_string(v),
			    json_object_get_string_len(v));
		putchar('\n');
	}
	json_object_put(o);
	if (!children(a, host, path, kids)) {
		json_object_put(kids);
		return false;
	}
	if (jn) {
		json_object *sub = json_object_new_array();

		json_object_object_add(jn, "children", sub);
		jparent = sub;
	}
	for (i = 0; ok && i < json_object_array_length(kids); i++) {
		const char *k = json_object_get_string(
			json_object_array_get_idx(kids, i));
		char *child;

		if (asprintf(&child, "%s/%s", strcmp(path, "/") ? path : "",
			     k) < 0)
			die(EXIT_FAILED, "out of memory");
		ok = ls_node(a, host, child, depth + 1, jparent);
		free(child);
	}
	json_object_put(kids);
	return ok;
}

static int cmd_ls(struct adm *a, const char *target)
{
	json_object *root = json_object_new_array();
	char host[80];
	const char *path;
	bool ok;

	split_target(target, host, sizeof(host), &path);
	ok = ls_node(a, host, path, 0, root);
	if (ok && a->json)
		printf("%s\n", json_object_to_json_string_ext(
				       json_object_array_get_idx(root, 0),
				       JSON_C_TO_STRING_PRETTY |
					       JSON_C_TO_STRING_SPACED));
	json_object_put(root);
	return ok ? 0 : EXIT_FAILED;
}

static int cmd_hosts(struct adm *a)
{
	json_object *o = control(a, (const char *[]){"hosts"}, 1), *arr;
	size_t i;
	int rc;

	if (answered(a, o, &rc))
		return rc;
	json_object_object_get_ex(o, "hosts", &arr);
	printf("%-16s %-8s %s\n", "HOST", "MEMBER", "NODES");
	for (i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *h = json_object_array_get_idx(arr, i);
		char member[24] = "-";

		if (num(h, "member", 0))
			snprintf(member, sizeof(member), "%lld",
				 num(h, "member", 0));
		printf("%-16s %-8s %lld%s\n", str(h, "name"), member,
		       num(h, "nodes", 0),
		       strcmp(str(h, "name"), str(o, "self")) ? ""
							       : "  (this host)");
	}
	json_object_put(o);
	return 0;
}

/* add ID ADDRESS [--peer P] [--name N] */
static int cmd_add(struct adm *a, int argc, char **argv)
{
	const char *peer = NULL, *name = NULL;
	char defpeer[128], defname[40];
	const char *colon;
	int i;

	if (argc < 2)
		die(EXIT_USAGE, "usage: cluster add ID ADDRESS [--peer "
				"PEER-ADDRESS] [--name NAME]");
	for (i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--peer") && i + 1 < argc)
			peer = argv[++i];
		else if (!strcmp(argv[i], "--name") && i + 1 < argc)
			name = argv[++i];
		else
			die(EXIT_USAGE, "unexpected \"%s\"", argv[i]);
	}
	colon = strrchr(argv[1], ':');
	if (!colon || atoi(colon + 1) <= 0 || atoi(colon + 1) >= 65535)
		die(EXIT_USAGE, "ADDRESS is host:port, not \"%s\"", argv[1]);
	if (!peer) {
		snprintf(defpeer, sizeof(defpeer), "%.*s:%d",
			 (int)(colon - argv[1]), argv[1],
			 atoi(colon + 1) + 1);
		peer = defpeer;
	}
	if (!name) {
		snprintf(defname, sizeof(defname), "host%s", argv[0]);
		name = defname;
	}
	return simple(a,
		      (const char *[]){"add", argv[0], argv[1], peer, name}, 5,
		      "added as a standby (promote it to make it a voter)");
}

/* domain migrate|adopt SRC DST [--merge] [--subtree PATH]... [--fenced] */
static int cmd_move(struct adm *a, int argc, char **argv)
{
	const char *args[40];
	int n = 0, i;

	if (argc < 3 || !strchr(argv[1], ':') || !strchr(argv[2], ':'))
		die(EXIT_USAGE, "usage: domain %s HOST:DOMID HOST:DOMID "
				"[--merge] [--subtree PATH]...%s",
		    argv[0], !strcmp(argv[0], "adopt") ? " [--fenced]" : "");
	args[n++] = argv[0];
	args[n++] = argv[1];
	args[n++] = argv[2];
	for (i = 3; i < argc; i++) {
		char *sub;

		if (n >= 36)
			die(EXIT_USAGE, "too many subtrees");
		if (!strcmp(argv[i], "--merge")) {
			args[n++] = "merge";
		} else if (!strcmp(argv[i], "--fenced") &&
			   !strcmp(argv[0], "adopt")) {
			args[n++] = "fenced";
		} else if (!strcmp(argv[i], "--subtree") && i + 1 < argc &&
			   argv[i + 1][0] == '/') {
			/* freed at exit */
			if (asprintf(&sub, "subtree=%s", argv[++i]) < 0)
				die(EXIT_FAILED, "out of memory");
			args[n++] = sub;
		} else {
			die(EXIT_USAGE, "unexpected \"%s\"", argv[i]);
		}
	}
	{
		json_object *o = control_in(a, "domain", args, n);
		bool ok = check(a, o, true);

		json_object *on = NULL, *ix = NULL;

		if (ok && !a->json) {
			json_object_object_get_ex(o, "applied_on", &on);
			json_object_object_get_ex(o, "index", &ix);
			printf("%s %s -> %s: done", !strcmp(argv[0], "adopt")
							 ? "adopted"
							 : "migrated",
			       argv[1], argv[2]);
			if (on && ix)
				printf(" (applied by %s's member at log index "
				       "%s)",
				       json_object_get_string(on),
				       json_object_get_string(ix));
			printf("\n");
		}
		json_object_put(o);
		return ok ? 0 : EXIT_FAILED;
	}
}

static int cmd_domains(struct adm *a, int argc, char **argv)
{
	const char *args[2] = {"list", argc > 1 ? argv[1] : NULL};
	json_object *o = control_in(a, "domain", args, argc > 1 ? 2 : 1), *arr;
	size_t i;
	int rc;

	if (answered(a, o, &rc))
		return rc;
	json_object_object_get_ex(o, "domains", &arr);
	printf("%-16s %6s %-20s %-10s %s\n", "HOST", "DOMID", "NAME",
	       "INTRODUCED", "VM");
	for (i = 0; arr && i < json_object_array_length(arr); i++) {
		json_object *e = json_object_array_get_idx(arr, i);

		printf("%-16s %6lld %-20s %-10s %s\n", str(e, "host"),
		       num(e, "domid", 0), str(e, "name"),
		       !flag(e, "introduced") ? "no"
		       : flag(e, "suspending") ? "suspending"
					       : "yes",
		       str(e, "vm"));
	}
	json_object_put(o);
	return 0;
}

/* A member id: a decimal number from 1 to 2^63 - 1. */
/*
 * `cluster backup FILE`: the daemon writes FILE (it holds the state and
 * runs as root on this host); a relative FILE is made absolute here.
 */
static int cmd_backup(struct adm *a, const char *file)
{
	char path[PATH_MAX], cwd[PATH_MAX];
	json_object *o;

	if (file[0] == '/') {
		snprintf(path, sizeof(path), "%s", file);
	} else {
		if (!getcwd(cwd, sizeof(cwd)) ||
		    (size_t)snprintf(path, sizeof(path), "%s/%s", cwd, file) >=
			    sizeof(path))
			die(EXIT_USAGE, "cannot make %s an absolute path", file);
	}
	o = control(a, (const char *[]){"backup", path}, 2);
	if (!check(a, o, true)) {
		json_object_put(o);
		return EXIT_FAILED;
	}
	if (!a->json)
		printf("backup written by the daemon to %s: log index %lld, "
		       "term %lld, %lld bytes, digest %s\n",
		       str(o, "file"), num(o, "index", 0), num(o, "term", 0),
		       num(o, "bytes", 0), str(o, "digest"));
	json_object_put(o);
	return 0;
}

/* `cluster recover`: the daemon restarts itself as the only voter. */
static int cmd_recover(struct adm *a)
{
	json_object *o = control(a, (const char *[]){"recover"}, 1);
	bool ok = check(a, o, true);

	if (ok && !a->json)
		printf("recovering: the daemon stops and starts again as the "
		       "only voter of a new cluster (see its log); then add "
		       "members with `xsadm cluster add`\n");
	json_object_put(o);
	return ok ? 0 : EXIT_FAILED;
}

static bool valid_id(const char *s)
{
	char *end;
	unsigned long long v;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	return !errno && v > 0 && v < (1ull << 63);
}

/* Is `cluster av...` a command we know, with well-formed ids? */
static bool known_cluster_command(int ac, char **av)
{
	const char *cmd = av[0];

	if (!strcmp(cmd, "health"))
		return true; /* it checks its options itself */
	if (ac == 1 && (!strcmp(cmd, "status") || !strcmp(cmd, "verify") ||
			!strcmp(cmd, "hosts") || !strcmp(cmd, "snapshot") ||
			!strcmp(cmd, "transfer") || !strcmp(cmd, "recover")))
		return true;
	if (ac == 2 && !strcmp(cmd, "backup"))
		return true;
	if (!strcmp(cmd, "remove") || !strcmp(cmd, "promote") ||
	    !strcmp(cmd, "demote") || !strcmp(cmd, "transfer") ||
	    !strcmp(cmd, "add")) {
		/* add checks the rest of its arguments itself */
		if (ac != 2 && strcmp(cmd, "add") != 0)
			return false;
		if (ac < 2 || !valid_id(av[1])) {
			if (ac >= 2)
				fprintf(stderr,
					"xsadm: \"%s\" is not a member id\n",
					av[1]);
			return false;
		}
		return true;
	}
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'v'},
		{NULL, 0, NULL, 0},
	};
	struct adm a = {.fd = -1};
	const char *env = getenv("XENSTORED_PATH");
	char **av;
	int opt, ac;

	a.socket = env && *env ? env : "/var/run/xenstored/socket";
	/* options may follow the command too: stop at nothing */
	while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			a.socket = optarg;
			break;
		case 'j':
			a.json = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'v':
			printf("xsadm (%s) %s\n", XSR_PROJECT_NAME,
			       XSR_VERSION);
			return 0;
		default:
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	av = argv + optind;
	ac = argc - optind;
	/* a trailing --json is welcome too */
	if (ac > 0 && strcmp(av[ac - 1], "--json") == 0) {
		a.json = true;
		ac--;
	}
	if (ac < 1) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(av[0], "ls") || !strcmp(av[0], "read")) {
		if (ac != 2)
			die(EXIT_USAGE, "usage: %s HOST:PATH", av[0]);
		connect_daemon(&a);
		return !strcmp(av[0], "ls") ? cmd_ls(&a, av[1])
					    : cmd_read(&a, av[1]);
	}
	if (strcmp(av[0], "domain") == 0 && ac >= 2) {
		av++;
		ac--;
		if ((!strcmp(av[0], "migrate") || !strcmp(av[0], "adopt"))) {
			if (ac < 3)
				die(EXIT_USAGE, "usage: domain %s HOST:DOMID "
						"HOST:DOMID [--merge] "
						"[--subtree PATH]...%s",
				    av[0], !strcmp(av[0], "adopt")
						   ? " [--fenced]"
						   : "");
			connect_daemon(&a);
			return cmd_move(&a, ac, av);
		}
		if (!strcmp(av[0], "list") && ac <= 2) {
			connect_daemon(&a);
			return cmd_domains(&a, ac, av);
		}
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(av[0], "cluster") != 0 || ac < 2) {
		usage(stderr);
		return EXIT_USAGE;
	}
	av++;
	ac--;
	if (!known_cluster_command(ac, av)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (!strcmp(av[0], "health"))
		return cmd_health(&a, ac, av);
	connect_daemon(&a);
	if (!strcmp(av[0], "status") && ac == 1)
		return cmd_status(&a);
	if (!strcmp(av[0], "verify") && ac == 1)
		return cmd_verify(&a);
	if (!strcmp(av[0], "hosts") && ac == 1)
		return cmd_hosts(&a);
	if (!strcmp(av[0], "snapshot") && ac == 1)
		return simple(&a, (const char *[]){"snapshot"}, 1,
			      "snapshot requested");
	if (!strcmp(av[0], "backup") && ac == 2)
		return cmd_backup(&a, av[1]);
	if (!strcmp(av[0], "recover") && ac == 1)
		return cmd_recover(&a);
	if (!strcmp(av[0], "add"))
		return cmd_add(&a, ac - 1, av + 1);
	if ((!strcmp(av[0], "remove") || !strcmp(av[0], "promote") ||
	     !strcmp(av[0], "demote")) &&
	    ac == 2)
		return simple(&a, (const char *[]){av[0], av[1]}, 2, "done");
	if (!strcmp(av[0], "transfer") && ac <= 2)
		return simple(&a, (const char *[]){"transfer", av[1]}, ac,
			      "leadership transferred");
	usage(stderr);
	return EXIT_USAGE;
}
