/*
 * node/daemon.h: the daemon object shared by the node modules (dispatch,
 * apply, control, snapshot, main). Private to node/.
 *
 * Request path (DESIGN.md): a connection hands a request to
 * daemon_request(); reads are answered from the local store at once;
 * mutations become log entries {origin, seq, caller, op} submitted through
 * consensus/repl; daemon_apply() applies every committed entry to the
 * store, fires this member's watches, and answers the waiting request when
 * the entry came from here.
 */
#ifndef XSR_NODE_DAEMON_H
#define XSR_NODE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "consensus/repl.h"
#include "node/caller.h"
#include "node/cluster.h"
#include "node/conn.h"
#include "node/dispatch.h"
#include "node/domains.h"
#include "node/log.h"
#include "node/peers.h"
#include "node/ready.h"
#include "node/submit.h"
#include "node/trace.h"
#include "node/store/store.h"
#include "node/watch.h"

/* A member of the initial configuration ([cluster] member = ...). */
struct member_cfg {
	uint64_t id;
	char *name;
	char *raft_address;
	char *peer_address;
};

/*
 * The cluster part of the config file. Without a [member] section the
 * daemon is a cluster of one, with no network at all.
 */
struct cluster_cfg {
	bool enabled;		 /* a [member] section was given */
	struct member_cfg self;	 /* [member] */
	struct member_cfg *members; /* [cluster] member = ..., in order */
	size_t n_members;
	uint8_t key[16];	 /* [cluster] key: authenticates peer frames */
	bool has_key;
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned commit_timeout_ms;
};

/* Settings from the command line and the config file. */
struct config {
	bool foreground;	  /* -N */
	bool output_pid;	  /* -P */
	const char *pid_file;	  /* -F */
	const char *trace_file;	  /* -T */
	const char *log_file;	  /* --log-file */
	const char *data_dir;	  /* --data-dir */
	const char *run_dir;	  /* --run-dir */
	const char *config_file;  /* --config */
	const char *host_name;	  /* --host-name */
	bool verbose;		  /* -V */
	struct quotas quotas;	  /* -E -S -A -M -W -t -Q -q */
	unsigned watch_event_timeout_s; /* -w watch-event= */
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	unsigned ready_timeout_ms;
	const char *ring_backend; /* --ring-backend: "xen", "sim:DIR", "none" */
	struct cluster_cfg cluster; /* --config: [member], [cluster] */
};

struct daemon {
	uv_loop_t *loop;
	struct config cfg;
	char *host;	    /* this member's name: its tree in the forest */
	uint64_t member_id;
	uint64_t incarnation; /* bumped at each start, persisted */
	struct store *store;
	struct repl *repl;
	struct watches *watches;
	struct conn_pool *pool;
	struct conn_limits limits;
	uint64_t conn_serial;
	struct submitter *submit; /* entries on their way (node/submit.h) */
	struct peers *peers;	  /* the peer channel (node/peers.h) */
	uv_timer_t tick;	/* resends, readiness, query time-outs */
	uv_timer_t drain;	/* stopping: waiting for requests in flight */
	uint64_t drain_deadline_ms;

	struct cluster *cluster;  /* admin, readiness (node/cluster.h) */
	bool serving;
	bool stopping;

	struct domains *domains; /* guests and rings (node/domains.h) */

	struct trace *trace; /* -T, CONTROL log|logfile (node/trace.h) */
	struct conn_handler client; /* every client connection's handler */

	/* listening sockets */
	int listen_fd[2];
	uv_poll_t listen_poll[2];
	char *socket_path[2];

	uv_signal_t sig_term, sig_int, sig_hup;
	int exit_code;
	int ready_fd; /* to tell the parent we are up (daemonized) */
};

/*
 * The modules of the server, each with its header (its manual): see
 * docs/ARCHITECTURE.md for what may call what.
 */
#endif
