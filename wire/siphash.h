/*
 * wire/siphash.h: SipHash-2-4 (Aumasson and Bernstein, 2012), 64- and
 * 128-bit output. A keyed PRF: the store uses it to hash paths, the
 * cluster to authenticate peer frames and to digest replicas. Pure
 * functions, no dependencies (its own CMake library, so the store may use
 * it and still link nothing else of ours).
 */
#ifndef XSR_WIRE_SIPHASH_H
#define XSR_WIRE_SIPHASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t siphash64(const uint8_t key[16], const void *in, size_t len);
void siphash128(const uint8_t key[16], const void *in, size_t len,
		uint8_t out[16]);

/* Incremental 128-bit SipHash for data that arrives in pieces. */
struct siphash_state {
	uint64_t v0, v1, v2, v3;
	uint8_t buf[8];
	size_t buf_len;
	uint64_t total;
};

void siphash128_init(struct siphash_state *s, const uint8_t key[16]);
void siphash128_update(struct siphash_state *s, const void *in, size_t len);
void siphash128_final(struct siphash_state *s, uint8_t out[16]);

#endif
