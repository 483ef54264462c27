/*
 * node/hashkey.h: the key under which the daemon's store hashes paths
 * (store_new_keyed), derived from what the member already has; no
 * randomness.
 */
#ifndef XSR_NODE_HASHKEY_H
#define XSR_NODE_HASHKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "node/store/store.h"

/*
 * host and member_id: the identity file's (node/datadir.c). Writes the
 * store's key to out: SipHash-128 of the identity ("host=..., id=...")
 * under store_hash_key_default, stable for the data directory, not
 * secret, and different on each member (nothing requires members to agree:
 * the trie's shape is never observable). docs/ARCHITECTURE.md ("The
 * store's contracts") says why a key guests might learn is still fine.
 */
void hashkey_store(const char *host, uint64_t member_id,
		   uint8_t out[STORE_HASH_KEY_LEN]);

#endif
