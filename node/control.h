/*
 * node/control.h: XS_CONTROL (the commands `xenstore-control` sends, and
 * `xsadm`'s `cluster ...` and `domain ...`, handed to their modules) and
 * the quota messages of Xen 4.22 (node/control.c). Privileged callers
 * only: dispatch checks that.
 */
#ifndef XSR_NODE_CONTROL_H
#define XSR_NODE_CONTROL_H

#include "node/conn.h"

struct daemon;

enum conn_verdict control_request(struct daemon *d, struct conn *c,
				  struct conn_req *r);
/* GET_QUOTA: the host's or one domain's settings, as in force here. */
enum conn_verdict control_get_quota(struct daemon *d, struct conn *c,
				    struct conn_req *r);
/* SET_QUOTA: a log entry (replicated state), answered once applied. */
enum conn_verdict control_set_quota(struct daemon *d, struct conn *c,
				    struct conn_req *r);

#endif
