/*
 * tests/fuzz/fuzz_store.h: the oracle of the store targets (fuzz_apply.c,
 * fuzz_snapshot.c): a store that came out of untrusted bytes must be
 * consistent and survive a snapshot round trip unchanged.
 */
#ifndef XSR_TESTS_FUZZ_STORE_H
#define XSR_TESTS_FUZZ_STORE_H

#include "node/store/store.h"

/* The key the targets' stores hash under (not the default key). */
extern const uint8_t fuzz_store_key[STORE_HASH_KEY_LEN];

/*
 * Abort unless st passes store_check_report() and its snapshot decodes
 * into a store that passes it too and encodes to the same bytes.
 */
void fuzz_store_verify(struct store *st);

#endif
