/*
 * node/hostname.c: a valid member name from whatever the system calls
 * itself (see hostname.h).
 */
#include "node/hostname.h"

#include <string.h>

static bool name_byte(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
}

bool hostname_valid(const char *s)
{
	size_t n;

	for (n = 0; s[n]; n++)
		if (!name_byte(s[n]) || n >= HOSTNAME_MAX)
			return false;
	return n > 0;
}

/* Names that say "no name": a member called so would be a trap. */
static bool says_nothing(const char *s)
{
	return !*s || !strcmp(s, "(none)") || !strcmp(s, "none") ||
	       !strcmp(s, "localhost");
}

bool hostname_default(const char *sys, char *out)
{
	size_t i, n = 0;
	bool dash = false;

	if (!sys)
		sys = "";
	/* the short name: up to the first '.' (sanitising keeps the rest) */
	for (i = 0; sys[i] && sys[i] != '.' && i <= HOSTNAME_MAX; i++)
		;
	if ((!sys[i] || sys[i] == '.') && i > 0 && i <= HOSTNAME_MAX) {
		memcpy(out, sys, i);
		out[i] = '\0';
		if (hostname_valid(out) && !says_nothing(out))
			return true;
	}
	for (i = 0; sys[i] && sys[i] != '.' && n < HOSTNAME_MAX; i++) {
		if (name_byte(sys[i])) {
			if (dash && n > 0 && n < HOSTNAME_MAX)
				out[n++] = '-';
			dash = false;
			if (n < HOSTNAME_MAX)
				out[n++] = sys[i];
		} else {
			dash = true;
		}
	}
	out[n] = '\0';
	while (n > 0 && out[n - 1] == '-')
		out[--n] = '\0';
	if (out[0] == '-') {
		size_t k = strspn(out, "-");

		memmove(out, out + k, n - k + 1);
	}
	if (says_nothing(out))
		strcpy(out, HOSTNAME_FALLBACK);
	return false;
}
