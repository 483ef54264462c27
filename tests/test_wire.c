/*
 * tests/test_wire.c: the wire codec: type names, the error table (its order
 * is ABI), payload splitting as cxenstored's get_strings()/onearg().
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <xen/io/xs_wire.h>

#include "wire/siphash.h"
#include "wire/xs_msg.h"

static void test_types_match_xen(void **state)
{
	/* Our numbering is positional like xs_wire.h (4.17 has up to 22). */
	assert_int_equal(WIRE_CONTROL, XS_CONTROL);
	assert_int_equal(WIRE_READ, XS_READ);
	assert_int_equal(WIRE_WATCH_EVENT, XS_WATCH_EVENT);
	assert_int_equal(WIRE_ERROR, XS_ERROR);
	assert_int_equal(WIRE_RESET_WATCHES, XS_RESET_WATCHES);
	assert_int_equal(WIRE_DIRECTORY_PART, XS_DIRECTORY_PART);
	assert_int_equal(WIRE_PAYLOAD_MAX, XENSTORE_PAYLOAD_MAX);
	assert_int_equal(WIRE_HDR_SIZE, sizeof(struct xsd_sockmsg));
	assert_string_equal(wire_type_name(WIRE_SET_QUOTA), "SET_QUOTA");
	assert_null(wire_type_name(WIRE_TYPE_COUNT));
	assert_null(wire_type_name(0xffff));
}

static void test_errors(void **state)
{
	bool known;
	unsigned int i;

	/* Every name of Xen's table maps both ways. */
	for (i = 0; i < sizeof(xsd_errors) / sizeof(xsd_errors[0]); i++) {
		assert_string_equal(wire_errno_name(-xsd_errors[i].errnum,
						    &known),
				    xsd_errors[i].errstring);
		assert_true(known);
		assert_int_equal(wire_errno_from_name(xsd_errors[i].errstring),
				 -xsd_errors[i].errnum);
	}
	/* untranslatable errno: EINVAL, as cxenstored */
	assert_string_equal(wire_errno_name(-EBADF, &known), "EINVAL");
	assert_false(known);
	assert_int_equal(wire_errno_from_name("EQUOTA"), -EINVAL);
}

static void test_split(void **state)
{
	const char *v[3];

	assert_int_equal(wire_count_strings("a\0bb\0c", 6), 2);
	assert_int_equal(wire_split("a\0bb\0c", 6, v, 3), 2);
	assert_string_equal(v[0], "a");
	assert_string_equal(v[1], "bb");
	/* more strings than slots: the count is still the total */
	assert_int_equal(wire_split("a\0b\0c\0d\0", 8, v, 2), 4);
	assert_string_equal(v[1], "b");
	assert_int_equal(wire_split("", 0, v, 1), 0);
	assert_int_equal(wire_split("abc", 3, v, 1), 0);
}

static void test_onearg(void **state)
{
	assert_string_equal(wire_onearg("/a\0", 3), "/a");
	assert_null(wire_onearg("/a", 2));	     /* no NUL */
	assert_null(wire_onearg("/a\0b\0", 5));	     /* two strings */
	assert_null(wire_onearg("/a\0\0", 4));	     /* extra NUL */
	assert_null(wire_onearg("", 0));	     /* empty */
	assert_string_equal(wire_onearg("\0", 1), ""); /* one empty string */
}

static void test_header_roundtrip(void **state)
{
	struct wire_hdr h = {WIRE_WRITE, 7, 3, 42}, g;
	uint8_t raw[WIRE_HDR_SIZE];
	struct xsd_sockmsg m;

	wire_hdr_encode(&h, raw);
	memcpy(&m, raw, sizeof(m));
	assert_int_equal(m.type, XS_WRITE);
	assert_int_equal(m.req_id, 7);
	assert_int_equal(m.tx_id, 3);
	assert_int_equal(m.len, 42);
	wire_hdr_decode(raw, &g);
	assert_memory_equal(&h, &g, sizeof(h));
}

/* The test vectors of the SipHash paper (key 00..0f, message 00..len-1). */
static void test_siphash_vectors(void **state)
{
	static const uint8_t want128_0[16] = {0xa3, 0x81, 0x7f, 0x04, 0xba, 0x25,
					      0xa8, 0xe6, 0x6d, 0xf6, 0x72, 0x14,
					      0xc7, 0x55, 0x02, 0x93};
	uint8_t key[16], msg[64], out[16], out2[16];
	struct siphash_state s;
	int i;

	for (i = 0; i < 16; i++)
		key[i] = (uint8_t)i;
	for (i = 0; i < 64; i++)
		msg[i] = (uint8_t)i;
	assert_true(siphash64(key, msg, 0) == 0x726fdb47dd0e0e31ULL);
	assert_true(siphash64(key, msg, 15) == 0xa129ca6149be45e5ULL);
	siphash128(key, msg, 0, out);
	assert_memory_equal(out, want128_0, 16);
	/* incremental = one shot, whatever the pieces */
	siphash128(key, msg, 63, out);
	siphash128_init(&s, key);
	siphash128_update(&s, msg, 3);
	siphash128_update(&s, msg + 3, 10);
	siphash128_update(&s, msg + 13, 50);
	siphash128_final(&s, out2);
	assert_memory_equal(out, out2, 16);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_types_match_xen),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_split),
		cmocka_unit_test(test_onearg),
		cmocka_unit_test(test_header_roundtrip),
		cmocka_unit_test(test_siphash_vectors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
