/*
 * node/cluster_hosts.c: any host's tree, for admins (`xsadm cluster hosts`, `ls
 * HOST:PATH`, `read HOST:PATH`): read from this member's replica.
 */
#include "node/cluster_int.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum conn_verdict cluster_hosts_read(struct daemon *d, struct conn *c,
				   struct conn_req *r, const char **argv,
				   unsigned int argc)
{
	struct store_caller admin = {.domid = 0,
				     .privileged = true,
				     .target = STORE_NO_TARGET,
				     .quota = caller_quotas(d, 0).store};
	const char *cmd = argv[0], *host = argc > 1 ? argv[1] : "";
	const char *path = argc > 2 ? argv[2] : "/";
	json_object *o;
	int rc;

	if (argc < 2 || argc > 4)
		return admin_reply_now(c, r, admin_error(0, "usage: %s HOST [PATH]", cmd));
	if (d->no_quorum_since && strcmp(host, d->host)) {
		log_msg(4, "cluster %s of host %s refused: standalone mode",
			cmd, host);
		return admin_reply_now(c, r, admin_error(ENOTCONN,
			"standalone mode (no quorum): host %s's tree here may "
			"be stale; only this host's (%s) is answered", host,
			d->host));
	}
	if (!store_host_exists(d->store, host))
		return admin_reply_now(c, r, admin_error(0, "no host \"%s\" in the store",
					    host));
	o = admin_ok();
	if (strcmp(cmd, "read") == 0) {
		const char *v;
		size_t len;

		rc = store_read(d->store, host, NULL, &admin, path, &v, &len);
		if (!rc)
			json_object_object_add(
				o, "value",
				json_object_new_string_len(v, (int)len));
	} else if (strcmp(cmd, "dir") == 0) {
		json_object *arr = json_object_new_array();
		const char *kids, *k;
		size_t len, off = 0, used = 0;
		uint64_t gen;

		if (argc == 4)
			off = strtoul(argv[3], NULL, 10);
		rc = store_directory(d->store, host, NULL, &admin, path, &kids,
				     &len, &gen);
		/* names from byte offset `off`, as many as fit a reply */
		for (k = kids + off; !rc && off < len && k < kids + len;
		     k += strlen(k) + 1) {
			if (used + strlen(k) + 8 > 2800) {
				json_object_object_add(
					o, "next",
					admin_u64((uint64_t)(k - kids)));
				break;
			}
			used += strlen(k) + 4;
			json_object_array_add(arr, json_object_new_string(k));
		}
		json_object_object_add(o, "children", arr);
	} else {
		const struct store_perm *p;
		uint32_t n, i;

		rc = store_get_perms(d->store, host, NULL, &admin, path, &p,
				     &n);
		if (!rc) {
			json_object *arr = json_object_new_array();
			char buf[16];

			for (i = 0; i < n; i++) {
				store_perm_format(&p[i], buf);
				json_object_array_add(
					arr, json_object_new_string(buf));
			}
			json_object_object_add(o, "perms", arr);
		}
	}
	if (rc) {
		json_object_put(o);
		return admin_reply_now(c, r, admin_error(0, "%s %s:%s: %s", cmd, host, path,
					    strerror(-rc)));
	}
	return admin_reply_now(c, r, o);
}

enum conn_verdict cluster_hosts_list(struct daemon *d, struct conn *c,
				    struct conn_req *r, const char **argv,
				unsigned int argc)
{
	json_object *o = admin_ok(), *arr = json_object_new_array();
	size_t i;

	for (i = 0; i < store_host_count(d->store); i++) {
		const char *h = store_host_name(d->store, i);
		const struct store_member *m = store_member_by_name(d->store, h);
		json_object *e = json_object_new_object();

		json_object_object_add(e, "name", json_object_new_string(h));
		json_object_object_add(e, "nodes",
				       admin_u64(store_node_count(d->store, h)));
		if (m)
			json_object_object_add(e, "member", admin_u64(m->id));
		json_object_array_add(arr, e);
	}
	json_object_object_add(o, "hosts", arr);
	json_object_object_add(o, "self", json_object_new_string(d->host));
	return admin_reply_now(c, r, o);
}
