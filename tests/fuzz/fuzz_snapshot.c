/*
 * tests/fuzz/fuzz_snapshot.c: snapshot bytes (as a member receives them
 * in an InstallSnapshot) through sm_snapshot_decode_keyed()
 * (consensus/sm_snap.c). What decodes must be a consistent store whose
 * own snapshot round-trips unchanged.
 */
#include "consensus/sm.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store *st;

	if (sm_snapshot_decode_keyed(data, size, fuzz_store_key, &st) != 0)
		return 0;
	fuzz_store_verify(st);
	store_free(st);
	return 0;
}
