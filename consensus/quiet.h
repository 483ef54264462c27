/*
 * consensus/quiet.h: how often a refusal is logged. A misconfigured
 * member retries many times a second, and a hostile peer can connect as
 * fast as it likes: each line about one key (a peer and a reason) is
 * logged at most once per QUIET_MS, and all of them at most QUIET_BUDGET
 * times per QUIET_BUDGET_MS, each logged line saying how many were held
 * back. Pure: the caller passes the time.
 */
#ifndef XSR_CONSENSUS_QUIET_H
#define XSR_CONSENSUS_QUIET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define QUIET_MS 30000
#define QUIET_SLOTS 32
#define QUIET_BUDGET 60
#define QUIET_BUDGET_MS 60000

struct quiet {
	struct {
		char key[128];
		uint64_t last_ms;
		unsigned long held; /* lines about key held back since */
	} slot[QUIET_SLOTS];
	uint64_t budget_start_ms;
	unsigned budget_used;
	unsigned long over_budget; /* lines held back for the budget */
};

/*
 * May a line about key be logged at now_ms? If so, more receives what to
 * append to it (" (and 3 more times since)", or ""). A zeroed struct quiet
 * is ready.
 */
bool quiet_allow(struct quiet *q, uint64_t now_ms, const char *key,
		 char *more, size_t morelen);

#endif
