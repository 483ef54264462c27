/*
 * node/ready.h: catching up before serving.
 *
 * A starting member serves nothing until it has applied every entry that
 * was committed before it started: it may have acknowledged some of them
 * to its clients before a crash, and its log alone does not say which
 * (a follower learns the commit index from its leader). The target is a
 * read index (Raft dissertation 6.4), never a bare commit index: a leader
 * elected a moment ago may not yet have committed an entry of its own
 * term, and its commit index may then be far behind what its predecessor
 * committed (docs/ARCHITECTURE.md has the case that showed it).
 *
 * The state machine (ready.c has the transition table):
 *
 *                 leader known, not us: ask it
 *   R_LEADER -------------------------------------> R_ASKED
 *      |  ^                                           |  |
 *      |  |   no answer within READY_QUERY_MS, or     |  | answer: read
 *      |  +-- "not yet" (no entry of its term), or ---+  | index N > 0
 *      |      another leader meanwhile                   v
 *      |  we lead and our read index N is known      R_APPLY
 *      +-------------------------------------------->    |
 *                                                        | applied >= N
 *      any state but R_DONE: timeout_ms passed           v
 *      ------------------------------------------->  R_DONE
 *
 * R_DONE calls done(arg, 0) once caught up, or done(arg, -ETIMEDOUT) once
 * timeout_ms has passed (the caller gives up starting). A cold start: if
 * env->waited is set, it is called once env->wait_ms after the start if
 * not caught up by then; if it answers true (the member serves its own
 * tree from local state, node/standalone.h), there is no deadline any
 * more: the machine goes on until caught up, however long the quorum
 * takes to form. Nothing here
 * blocks: the caller feeds ready_tick() from its timer and ready_answer()
 * from the peer channel. Logs say, every 5 s, what is awaited, with the
 * applied and target figures.
 *
 * XSR_FAULT_SERVE_STALE=1 in the environment makes ready_start() finish at
 * once without catching up: a deliberately broken member, for the
 * fault-injection suite's test of its own checker (tests/chaos). Never
 * set it otherwise.
 */
#ifndef XSR_NODE_READY_H
#define XSR_NODE_READY_H

#include <stdbool.h>
#include <stdint.h>

/* How long R_ASKED waits for the leader's answer before asking again. */
#define READY_QUERY_MS 300

/* What the state machine needs of the member around it. */
struct ready_env {
	void *arg;
	uint64_t self;			    /* this member's id */
	uint64_t (*leader)(void *arg);	    /* the known leader, 0: none */
	int (*read_index)(void *arg, uint64_t *index); /* we lead: 0 once known */
	uint64_t (*applied)(void *arg);	    /* the last applied index */
	uint64_t (*log_last)(void *arg);    /* the last index in our log */
	/* Ask member `leader` for its read index; *qid names the question
	 * (its answer comes back through ready_answer). 0 or -errno. */
	int (*ask)(void *arg, uint64_t leader, uint64_t *qid);
	/* Called once: 0 caught up, -ETIMEDOUT gave up. */
	void (*done)(void *arg, int status);
	/* Optional: called once, wait_ms after the start, if not caught up
	 * by then; true: wait without a deadline from now on. */
	bool (*waited)(void *arg);
	unsigned wait_ms;
};

struct ready;

/*
 * Start waiting at time now (ms, the caller's clock), for at most
 * timeout_ms. May call env->done before it returns (the fault switch).
 * NULL if out of memory.
 */
struct ready *ready_start(const struct ready_env *env, unsigned timeout_ms,
			  uint64_t now);

/* Advance on the caller's timer; does nothing once finished. */
void ready_tick(struct ready *rd, uint64_t now);

/*
 * A member's answer: its read index (0: "not yet", no entry of its term
 * has committed). Returns true if it answered our question (qid from
 * ask(), sent to from), false if it was not for us.
 */
bool ready_answer(struct ready *rd, uint64_t from, uint64_t qid,
		  uint64_t read_index);

/* done has been called. */
bool ready_finished(const struct ready *rd);

void ready_free(struct ready *rd);

#endif
