/*
 * tests/fuzz/fuzz.h: what every fuzz target defines (libFuzzer's entry
 * point), for replay.c's main() and the targets' own prototypes.
 */
#ifndef XSR_TESTS_FUZZ_H
#define XSR_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input; must never crash, leak or hang, whatever the bytes. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Little-endian integers taken from the front of an input (0 past its
 * end), for targets whose input is a script of steps. */
struct fuzz_in {
	const uint8_t *p;
	size_t n;
};

static inline uint64_t fuzz_take(struct fuzz_in *in, unsigned bytes)
{
	uint64_t v = 0;
	unsigned i;

	for (i = 0; i < bytes && in->n; i++, in->p++, in->n--)
		v |= (uint64_t)*in->p << (8 * i);
	return v;
}

#endif
