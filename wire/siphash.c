/*
 * wire/siphash.c: SipHash-2-4 after the reference description in
 * "SipHash: a fast short-input PRF" (Aumasson, Bernstein, 2012), with its
 * 128-bit output variant. Checked against the paper's test vectors in
 * tests/test_wire.c.
 */
#include "wire/siphash.h"

#include <string.h>

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static void round_(struct siphash_state *s)
{
	s->v0 += s->v1;
	s->v1 = ROTL(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = ROTL(s->v0, 32);
	s->v2 += s->v3;
	s->v3 = ROTL(s->v3, 16);
	s->v3 ^= s->v2;
	s->v0 += s->v3;
	s->v3 = ROTL(s->v3, 21);
	s->v3 ^= s->v0;
	s->v2 += s->v1;
	s->v1 = ROTL(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = ROTL(s->v2, 32);
}

static uint64_t le64(const uint8_t *p)
{
	return (uint64_t)p[0] | (uint64_t)p[1] << 8 | (uint64_t)p[2] << 16 |
	       (uint64_t)p[3] << 24 | (uint64_t)p[4] << 32 |
	       (uint64_t)p[5] << 40 | (uint64_t)p[6] << 48 |
	       (uint64_t)p[7] << 56;
}

static void put64(uint8_t *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void init(struct siphash_state *s, const uint8_t key[16], int out128)
{
	uint64_t k0 = le64(key), k1 = le64(key + 8);

	s->v0 = 0x736f6d6570736575ULL ^ k0;
	s->v1 = 0x646f72616e646f6dULL ^ k1;
	s->v2 = 0x6c7967656e657261ULL ^ k0;
	s->v3 = 0x7465646279746573ULL ^ k1;
	if (out128)
		s->v1 ^= 0xee;
	s->buf_len = 0;
	s->total = 0;
}

static void block(struct siphash_state *s, uint64_t m)
{
	s->v3 ^= m;
	round_(s);
	round_(s);
	s->v0 ^= m;
}

static void update(struct siphash_state *s, const void *in, size_t len)
{
	const uint8_t *p = in;

	s->total += len;
	if (s->buf_len) {
		while (len && s->buf_len < 8) {
			s->buf[s->buf_len++] = *p++;
			len--;
		}
		if (s->buf_len < 8)
			return;
		block(s, le64(s->buf));
		s->buf_len = 0;
	}
	for (; len >= 8; p += 8, len -= 8)
		block(s, le64(p));
	memcpy(s->buf, p, len);
	s->buf_len = len;
}

static void finish(struct siphash_state *s, int out128)
{
	uint8_t last[8] = {0};

	memcpy(last, s->buf, s->buf_len);
	last[7] = (uint8_t)s->total;
	block(s, le64(last));
	s->v2 ^= out128 ? 0xee : 0xff;
	round_(s);
	round_(s);
	round_(s);
	round_(s);
}

uint64_t siphash64(const uint8_t key[16], const void *in, size_t len)
{
	struct siphash_state s;

	init(&s, key, 0);
	update(&s, in, len);
	finish(&s, 0);
	return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void siphash128_init(struct siphash_state *s, const uint8_t key[16])
{
	init(s, key, 1);
}

void siphash128_update(struct siphash_state *s, const void *in, size_t len)
{
	update(s, in, len);
}

void siphash128_final(struct siphash_state *s, uint8_t out[16])
{
	finish(s, 1);
	put64(out, s->v0 ^ s->v1 ^ s->v2 ^ s->v3);
	s->v1 ^= 0xdd;
	round_(s);
	round_(s);
	round_(s);
	round_(s);
	put64(out + 8, s->v0 ^ s->v1 ^ s->v2 ^ s->v3);
}

void siphash128(const uint8_t key[16], const void *in, size_t len,
		uint8_t out[16])
{
	struct siphash_state s;

	siphash128_init(&s, key);
	siphash128_update(&s, in, len);
	siphash128_final(&s, out);
}
