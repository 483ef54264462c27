/*
 * tests/fuzz/fuzz_apply.c: log entries through the decoder and sm_apply()
 * (consensus/sm_apply.c) on a store with a host; the input is entries,
 * each a 2-byte little-endian length and the packed entry. The store must
 * pass store_check() after each, and a snapshot round trip at the end.
 */
#include <stdlib.h>

#include "consensus/sm.h"
#include "tests/fuzz/fuzz.h"
#include "tests/fuzz/fuzz_store.h"

#define HOST "h1"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct store *st = store_new_keyed(fuzz_store_key);
	uint64_t index = 1;
	bool half = false; /* out of memory in the middle of an entry */

	if (!st || store_host_init(st, HOST, index) != 0)
		abort();
	while (in.n) {
		size_t len = (size_t)fuzz_take(&in, 2);
		struct sm_result res;
		bool fatal;

		if (len > in.n)
			len = in.n;
		sm_apply(st, ++index, in.p, len, &res);
		in.p += len;
		in.n -= len;
		fatal = res.fatal;
		half = fatal && !res.fatal_newer;
		sm_result_clear(&res);
		/* the caller stops the replica: no more entries */
		if (fatal)
			break;
		store_check_or_abort(st, __FILE__, __LINE__);
	}
	if (!half) /* then its state is not looked at either */
		fuzz_store_verify(st);
	store_free(st);
	return 0;
}
