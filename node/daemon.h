/*
 * node/daemon.h: the daemon object every module of the server is given,
 * and the settings it runs with. Private to node/.
 *
 * Request path (docs/ARCHITECTURE.md): a connection (conn.h) hands each
 * request to dispatch (dispatch.h); reads are answered from the local
 * store at once; mutations become log entries {origin, seq, caller, op}
 * submitted through submit.h to the log (consensus/repl.h); every member
 * applies every committed entry (apply.h), fires its own clients' watches
 * (fire.h), and answers the waiting request when the entry came from here.
 */
#ifndef XSR_NODE_DAEMON_H
#define XSR_NODE_DAEMON_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "consensus/repl.h"
#include "node/caller.h"
#include "node/conn.h"
#include "node/log.h"
#include "node/store/store.h"

struct cluster;
struct tls_creds;
struct domains;
struct lifecycle;
struct listener;
struct notify;
struct peers;
struct submitter;
struct trace;
struct watches;

/* A member of the initial configuration ([cluster] member = ...). */
struct member_cfg {
	uint64_t id;
	char *name;
	char *raft_address;
	char *peer_address;
	int line; /* of the config file, for messages (0: none) */
};

/*
 * The cluster part of the config file. Without a [member] section the
 * daemon is a cluster of one, with no network at all.
 */
struct cluster_cfg {
	bool enabled;		 /* a [member] section was given */
	struct member_cfg self;	 /* [member] */
	int self_line;		 /* its first line, for messages, and */
	int self_address_line[2]; /* those of raft- and peer-address */
	struct member_cfg *members; /* [cluster] member = ..., in order */
	size_t n_members;
	char *ca_file;		 /* [cluster] TLS credentials (consensus/tls.h) */
	char *cert_file;
	char *key_file;
	bool insecure;		 /* [cluster] insecure = true: no TLS (tests) */
	unsigned election_timeout_ms;
	unsigned heartbeat_timeout_ms;
	unsigned commit_timeout_ms;
	/* `domain adopt` without --fenced: the source host's member must have
	 * been heard by no member for this long (node/cluster_contact.c);
	 * 0: never, the admin must always assert the host is fenced */
	unsigned adopt_after_s;
	/* standalone mode (node/standalone.h): own-tree writes without a
	 * quorum; after how long without one; how long a start waits for a
	 * quorum before serving its own tree from local state */
	bool standalone;
	unsigned standalone_after_ms;
	unsigned cold_start_wait_ms;
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
	const char *config_file;  /* --config, or the packaged default */
	bool check_config;	  /* --check-config: check, touch nothing */
	const char *host_name;	  /* --host-name */
	bool verbose;		  /* -V */
	struct quotas quotas;	  /* -E -S -A -M -W -t -Q -q */
	unsigned watch_event_timeout_s; /* -w watch-event= */
	unsigned snapshot_threshold;
	unsigned snapshot_trailing;
	unsigned ready_timeout_ms;
	const char *ring_backend; /* --ring-backend: "xen", "sim:DIR", "none" */
	const char *socket_ro_group; /* --socket-ro-group: NULL, root only */
	unsigned max_connections;    /* --max-connections */
	unsigned guest_write_rate;   /* --guest-write-rate: per s, 0: off */
	const char *restore_file;    /* --restore: seed a new cluster */
	bool force_new_cluster;      /* --force-new-cluster (repl.h) */
	struct cluster_cfg cluster; /* --config: [member], [cluster] */
	/* resolved at start (node/main.c) */
	char *socket_path[2];	  /* socket, socket_ro */
	struct conn_limits limits; /* per connection (node/conn.h) */
};

/*
 * The daemon: what every module is given. It holds the process's settings
 * and identity, the layers below the server (store, log), and one pointer
 * per module of the server; each module's state is its own, defined in its
 * .c file and reached through its header. node/daemon.c owns the object:
 * start-up, the tick, signals and shutdown.
 */
struct daemon {
	uv_loop_t *loop;
	struct config cfg;
	/* who this member is (node/datadir.h) */
	char *host; /* its tree in the forest */
	uint64_t member_id;
	uint64_t incarnation; /* bumped at each start, persisted */
	/* the layers below */
	/* what clients see (node/store/store.h): the replica, or in
	 * standalone mode the overlay of own-tree writes on a copy of it */
	struct store *store;
	/* standalone mode: the replica as the log applied it (NULL: none,
	 * d->store is the replica); daemon_replica() names whichever */
	struct store *committed;
	uint64_t no_quorum_since; /* standalone mode: Unix s, 0: quorum */
	struct repl *repl;   /* the log (consensus/repl.h) */
	struct tls_creds *tls; /* a member's credentials (consensus/tls.h) */
	/* the modules of the server */
	struct watches *watches;   /* socket clients' watches (watch.h) */
	struct conn_pool *pool;	   /* client connections (conn.h) */
	struct trace *trace;	   /* -T, CONTROL log|logfile (trace.h) */
	struct peers *peers;	   /* the peer channel (peers.h) */
	struct submitter *submit;  /* entries on their way (submit.h) */
	struct cluster *cluster;   /* admin, readiness (cluster.h) */
	struct domains *domains;   /* guests and rings (domains.h) */
	struct listener *listener; /* the Unix sockets (listen.h) */
	struct lifecycle *life;	   /* timers, signals (daemon.c) */
	struct standalone *standalone; /* own-tree writes (standalone.h) */
	struct notify *notify;	   /* the service manager (notify.h) */
	bool serving;  /* caught up: clients are served */
	bool stopping; /* a stop was asked for: nothing new is read */
	/* `cluster recover`: once stopped, start again as the only voter
	 * (node/main.c runs itself again with --force-new-cluster) */
	bool recover_on_exit;
};

/* The replica the log applies to, whatever clients see. */
static inline struct store *daemon_replica(const struct daemon *d)
{
	return d->committed ? d->committed : d->store;
}

/*
 * Run the daemon until it stops (node/daemon.c): d's settings, identity
 * and data directory lock are in place. Returns the exit status.
 */
int daemon_run(struct daemon *d);
#endif
