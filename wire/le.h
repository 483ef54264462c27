/*
 * wire/le.h: little-endian integers of n bytes (n <= 8) in byte buffers,
 * for the peer channel's frames and the snapshot header. Header only.
 */
#ifndef XSR_WIRE_LE_H
#define XSR_WIRE_LE_H

#include <stdint.h>

static inline void put_le(uint8_t *p, uint64_t v, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static inline uint64_t get_le(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;

	while (n--)
		v = v << 8 | p[n];
	return v;
}

#endif
