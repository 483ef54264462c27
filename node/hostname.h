/*
 * node/hostname.h: the name a host goes by in the replicated forest.
 *
 * A member's name keys its host tree in every replica, so it must be a
 * short, stable token: letters, digits, '-', '_' and '.', 1 to
 * HOSTNAME_MAX bytes. A cluster member's name comes from its config; a
 * single host takes the system's host name at its first start and keeps
 * it in DATA/identity. Early in a dom0's boot that name is often unset
 * ("(none)", the kernel's default) or not a valid token: Xen's own
 * xenstored does not care, and neither may we, so a default is derived.
 *
 * Pure functions: no I/O, no allocation.
 */
#ifndef XSR_NODE_HOSTNAME_H
#define XSR_NODE_HOSTNAME_H

#include <stdbool.h>
#include <stddef.h>

#define HOSTNAME_MAX 64
/* The name of a host whose system host name gives nothing usable. */
#define HOSTNAME_FALLBACK "dom0"

/* Is s usable as a member name as it is? */
bool hostname_valid(const char *s);

/*
 * The default member name for a system host name `sys` (as gethostname()
 * gives it; NULL if that failed), written to out (at least
 * HOSTNAME_MAX + 1 bytes). The rules, in order:
 *   - the part before the first '.', if that is valid as it is;
 *   - else that part sanitised: every run of other bytes becomes one '-',
 *     leading and trailing '-' dropped, cut to HOSTNAME_MAX bytes;
 *   - else (nothing left, or the kernel's "(none)", or "localhost")
 *     HOSTNAME_FALLBACK.
 * Returns true if out is the system's (short) name, false if it had to
 * be derived (the caller says so in its log).
 */
bool hostname_default(const char *sys, char *out);

#endif
