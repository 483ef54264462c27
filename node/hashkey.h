/*
 * node/hashkey.h: the key under which the daemon's store hashes paths
 * (store_new_keyed), derived from what the member already has; no
 * randomness, so every member of a cluster derives the same key.
 */
#ifndef XSR_NODE_HASHKEY_H
#define XSR_NODE_HASHKEY_H

#include <stdbool.h>
#include <stdint.h>

#include "node/store/store.h"

/*
 * cluster_key: 16 bytes every member shares (the digest of the cluster's
 * CA certificates: a public value) or NULL if none; clustered: a
 * [member] section was given; host and member_id: the identity file's
 * (node/datadir.c). Writes the store's key to out:
 * - with a cluster key: SipHash-128 of a fixed label under it, the same
 *   on every member;
 * - a cluster without TLS (insecure = true, for tests):
 *   store_hash_key_default, shared by every member;
 * - a cluster of one: SipHash-128 of the identity ("host=..., id=...")
 *   under the default key: stable for the data directory, not secret.
 * docs/ARCHITECTURE.md ("The store's contracts") says why a key guests
 * might learn is still fine for the trie.
 */
void hashkey_store(const uint8_t *cluster_key, bool clustered,
		   const char *host, uint64_t member_id,
		   uint8_t out[STORE_HASH_KEY_LEN]);

#endif
