/*
 * node/hashkey.c: the store's path-hashing key from what every member
 * shares (its CA's digest) or the member's identity (node/hashkey.h).
 * Pure: no I/O, no randomness.
 */
#include "node/hashkey.h"
#include "wire/siphash.h"

#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Changing the label changes every member's key: harmless (hashes are
 * never persisted), but keep it stable so that members agree. */
static const char label[] = "xenstored-raft store path hash key v1";

void hashkey_store(const uint8_t *cluster_key, bool clustered,
		   const char *host, uint64_t member_id,
		   uint8_t out[STORE_HASH_KEY_LEN])
{
	char id[256];
	int n;

	assert(out && host);
	if (cluster_key) {
		siphash128(cluster_key, label, sizeof(label) - 1, out);
		return;
	}
	if (clustered) {
		memcpy(out, store_hash_key_default, STORE_HASH_KEY_LEN);
		return;
	}
	n = snprintf(id, sizeof(id), "%s\nhost=%s\nid=%" PRIu64, label, host,
		     member_id);
	assert(n > 0);
	siphash128(store_hash_key_default, id,
		   (size_t)n < sizeof(id) ? (size_t)n : sizeof(id) - 1, out);
}
