/*
 * consensus/quiet.c: a small table of recent log keys (consensus/quiet.h).
 */
#include "consensus/quiet.h"

#include <stdio.h>
#include <string.h>

bool quiet_allow(struct quiet *q, uint64_t now_ms, const char *key,
		 char *more, size_t morelen)
{
	size_t i, pick = 0;
	bool known = false;

	more[0] = '\0';
	for (i = 0; i < QUIET_SLOTS; i++) {
		if (!strncmp(q->slot[i].key, key, sizeof(q->slot[i].key) - 1)) {
			pick = i;
			known = true;
			break;
		}
		if (q->slot[i].last_ms < q->slot[pick].last_ms)
			pick = i; /* the oldest, if key is not there */
	}
	if (known && now_ms - q->slot[pick].last_ms < QUIET_MS) {
		q->slot[pick].held++;
		return false;
	}
	if (now_ms - q->budget_start_ms >= QUIET_BUDGET_MS) {
		q->budget_start_ms = now_ms;
		q->budget_used = 0;
	}
	if (q->budget_used >= QUIET_BUDGET) {
		q->over_budget++;
		return false;
	}
	q->budget_used++;
	if (known && q->slot[pick].held) {
		snprintf(more, morelen, " (and %lu more times since)",
			 q->slot[pick].held);
	} else if (q->over_budget) {
		snprintf(more, morelen,
			 " (%lu other lines like it not logged: too many)",
			 q->over_budget);
		q->over_budget = 0;
	}
	snprintf(q->slot[pick].key, sizeof(q->slot[pick].key), "%s", key);
	q->slot[pick].last_ms = now_ms;
	q->slot[pick].held = 0;
	return true;
}
