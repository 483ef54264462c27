/*
 * tests/fuzz/fuzz_store.c: the store targets' oracle (fuzz_store.h):
 * store_check() and a snapshot round trip through consensus/sm_snap.c.
 */
#include "tests/fuzz/fuzz_store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "consensus/sm.h"

const uint8_t fuzz_store_key[STORE_HASH_KEY_LEN] = "xsr-fuzz-store-k";

static void encode(struct store *st, void **buf, size_t *len)
{
	struct store_pin *pin = store_pin(st);

	if (!pin || sm_snapshot_encode(pin, buf, len) != 0)
		abort(); /* memory: the fuzzer's limit, not a finding */
	store_unpin(pin);
}

void fuzz_store_verify(struct store *st)
{
	struct store *copy;
	void *a, *b;
	size_t alen, blen;
	int rc;

	store_check_or_abort(st, __FILE__, __LINE__);
	encode(st, &a, &alen);
	rc = sm_snapshot_decode_keyed(a, alen, store_hash_key(st), &copy);
	if (rc != 0) {
		fprintf(stderr, "fuzz: a snapshot of a consistent store does "
				"not decode (%d)\n",
			rc);
		abort();
	}
	store_check_or_abort(copy, __FILE__, __LINE__);
	encode(copy, &b, &blen);
	if (alen != blen || memcmp(a, b, alen) != 0) {
		fprintf(stderr, "fuzz: a snapshot decoded and encoded again "
				"differs (%zu bytes, then %zu)\n",
			alen, blen);
		abort();
	}
	free(a);
	free(b);
	store_free(copy);
}
