/*
 * node/admin.h: answers of the admin commands behind `xsadm` (CONTROL
 * cluster|domain ...): JSON objects, NUL-terminated on the wire.
 * node/admin.c builds and sends them for the cluster and migrate modules.
 */
#ifndef XSR_NODE_ADMIN_H
#define XSR_NODE_ADMIN_H

#include <stdint.h>

#include <json-c/json.h>

#include "node/conn.h"

/* {"ok":true} */
json_object *admin_ok(void);
/* {"ok":false,"error":MSG}, plus "errno":NAME if err != 0. */
json_object *admin_error(int err, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
json_object *admin_u64(uint64_t v);
/* o as the NUL-terminated reply to r; o is released. */
void admin_send(struct conn *c, struct conn_req *r, json_object *o);
/* admin_send(), then CONN_DONE: the reply of a request answered at once. */
enum conn_verdict admin_reply_now(struct conn *c, struct conn_req *r,
				  json_object *o);

#endif
