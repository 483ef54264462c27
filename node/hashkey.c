/*
 * node/hashkey.c: the store's path-hashing key from the member's identity
 * (node/hashkey.h). Pure: no I/O, no randomness.
 */
#include "node/hashkey.h"
#include "wire/siphash.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Changing the label changes every daemon's key: harmless (hashes are
 * never persisted nor seen by anyone). */
static const char label[] = "xenstored-raft store path hash key v1";

void hashkey_store(const char *host, uint64_t member_id,
		   uint8_t out[STORE_HASH_KEY_LEN])
{
	char id[256];
	int n;

	assert(out && host);
	n = snprintf(id, sizeof(id), "%s\nhost=%s\nid=%" PRIu64, label, host,
		     member_id);
	assert(n > 0);
	siphash128(store_hash_key_default, id,
		   (size_t)n < sizeof(id) ? (size_t)n : sizeof(id) - 1, out);
}
