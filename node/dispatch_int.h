/*
 * node/dispatch_int.h: what the files of the dispatch module share: the
 * request as every handler sees it, the handlers by file, and the
 * transactions of a connection.
 *
 *   dispatch.c         the table (handler and flags per type), the checks
 *                      every request passes first, the connection handler
 *   dispatch_node.c    READ, DIRECTORY(_PART), GET_PERMS, WRITE, MKDIR,
 *                      RM, SET_PERMS
 *   dispatch_watch.c   WATCH, UNWATCH, RESET_WATCHES
 *   dispatch_txn.c     TRANSACTION_START/END
 *   dispatch_domain.c  the domain messages, features, quotas, CONTROL
 */
#ifndef XSR_NODE_DISPATCH_INT_H
#define XSR_NODE_DISPATCH_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "consensus/sm.h"
#include "node/client.h"
#include "node/daemon.h"
#include "node/domains.h"
#include "node/submit.h"
#include "node/watch.h"

/*
 * One request as its handler sees it, built once per message after the
 * generic checks: who sent it, in which transaction, and the caller as
 * the store knows it (identity and the quotas in force).
 */
struct request {
	struct daemon *d;
	struct conn *c;
	struct conn_req *r; /* header and payload (NUL-terminated) */
	const struct conn_identity *id;
	struct client *cl;
	struct txn *tx; /* its transaction, or NULL */
	struct store_caller who;
};

typedef enum conn_verdict dispatch_fn(struct request *q);

/*
 * Answer q with an error (a local step's -STORE_ELOCAL as ENOMEM) or
 * "OK": CONN_DONE, or CONN_WAIT while a request of the connection is
 * still in the log (an answer must not overtake it).
 */
enum conn_verdict dispatch_error(struct request *q, int err);
enum conn_verdict dispatch_ok(struct request *q);
/* The reply to q: payload of len bytes. CONN_DONE. */
enum conn_verdict dispatch_reply(struct request *q, const void *payload,
				 size_t len);
/* A path argument made absolute for the caller; malloc()ed, NULL if out
 * of memory. */
char *dispatch_path(struct request *q, const char *arg);
/* The origin of q's log entry, with the next sequence number. */
struct sm_origin dispatch_origin(struct request *q);

/* dispatch_node.c */
dispatch_fn dispatch_read, dispatch_directory, dispatch_directory_part,
	dispatch_get_perms, dispatch_write, dispatch_mkdir, dispatch_rm,
	dispatch_set_perms;
/* dispatch_watch.c */
dispatch_fn dispatch_watch, dispatch_unwatch, dispatch_reset_watches;
/* dispatch_txn.c */
dispatch_fn dispatch_transaction_start, dispatch_transaction_end;
/* A transaction id of a ring taken up after a restart (see the file). */
struct txn *dispatch_txn_resurrect(struct request *q, uint32_t id);
/* dispatch_domain.c */
dispatch_fn dispatch_get_domain_path, dispatch_is_domain_introduced,
	dispatch_introduce, dispatch_release, dispatch_resume,
	dispatch_set_target, dispatch_get_feature, dispatch_set_feature,
	dispatch_get_quota, dispatch_set_quota, dispatch_control;

#endif
