/*
 * node/admin.c: the JSON replies of the admin commands (node/admin.h):
 * objects with "ok" true or false (and "error", "errno"); xsadm prints
 * them as tables, or passes them through with --json.
 */
#include "node/admin.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "wire/xs_msg.h"

json_object *admin_error(int err, const char *fmt, ...)
{
	json_object *o = json_object_new_object();
	char msg[512];
	bool known;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "ok", json_object_new_boolean(0));
	json_object_object_add(o, "error", json_object_new_string(msg));
	if (err)
		json_object_object_add(o, "errno", json_object_new_string(
							   wire_errno_name(err, &known)));
	return o;
}

json_object *admin_ok(void)
{
	json_object *o = json_object_new_object();

	json_object_object_add(o, "ok", json_object_new_boolean(1));
	return o;
}

void admin_send(struct conn *c, struct conn_req *r, json_object *o)
{
	const char *text = json_object_to_json_string_ext(o,
							  JSON_C_TO_STRING_PLAIN);

	conn_reply(c, r, text, strlen(text) + 1);
	json_object_put(o);
}

/* Reply at once to a CONTROL request (not async). */
enum conn_verdict admin_reply_now(struct conn *c, struct conn_req *r,
				   json_object *o)
{
	admin_send(c, r, o);
	return CONN_DONE;
}

json_object *admin_u64(uint64_t v)
{
	return json_object_new_int64((int64_t)v);
}
