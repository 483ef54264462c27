/*
 * wire/xs_msg.h: the xenstore wire protocol, as xs_wire.h defines it.
 *
 * A message is a 16-byte header (native endian) followed by `len` payload
 * bytes, len <= WIRE_PAYLOAD_MAX. Pure functions only: no I/O, no state.
 * Spec: xen/include/public/io/xs_wire.h, docs/misc/xenstore.txt.
 */
#ifndef XSR_WIRE_XS_MSG_H
#define XSR_WIRE_XS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Message types, positional as in xs_wire.h up to Xen 4.22. */
enum wire_type {
	WIRE_CONTROL = 0, /* alias XS_DEBUG */
	WIRE_DIRECTORY = 1,
	WIRE_READ = 2,
	WIRE_GET_PERMS = 3,
	WIRE_WATCH = 4,
	WIRE_UNWATCH = 5,
	WIRE_TRANSACTION_START = 6,
	WIRE_TRANSACTION_END = 7,
	WIRE_INTRODUCE = 8,
	WIRE_RELEASE = 9,
	WIRE_GET_DOMAIN_PATH = 10,
	WIRE_WRITE = 11,
	WIRE_MKDIR = 12,
	WIRE_RM = 13,
	WIRE_SET_PERMS = 14,
	WIRE_WATCH_EVENT = 15,
	WIRE_ERROR = 16,
	WIRE_IS_DOMAIN_INTRODUCED = 17,
	WIRE_RESUME = 18,
	WIRE_SET_TARGET = 19,
	WIRE_RESTRICT = 20, /* removed in Xen 4.9: always ENOSYS */
	WIRE_RESET_WATCHES = 21,
	WIRE_DIRECTORY_PART = 22,
	WIRE_GET_FEATURE = 23,
	WIRE_SET_FEATURE = 24,
	WIRE_GET_QUOTA = 25,
	WIRE_SET_QUOTA = 26,
	WIRE_TYPE_COUNT = 27,
	WIRE_INVALID = 0xffff,
};

#define WIRE_PAYLOAD_MAX 4096 /* XENSTORE_PAYLOAD_MAX, both directions */
#define WIRE_ABS_PATH_MAX 3072 /* XENSTORE_ABS_PATH_MAX */
#define WIRE_REL_PATH_MAX 2048 /* XENSTORE_REL_PATH_MAX */
#define WIRE_HDR_SIZE 16

/* struct xsd_sockmsg. */
struct wire_hdr {
	uint32_t type;
	uint32_t req_id;
	uint32_t tx_id;
	uint32_t len;
};

/* Permission letters of the wire format (XS_PERM_*). */
#define WIRE_PERM_NONE 0x0
#define WIRE_PERM_READ 0x1
#define WIRE_PERM_WRITE 0x2
#define WIRE_PERM_OWNER 0x8 /* internal: computed, never stored */

/* Ring page server features (docs/misc/xenstore-ring.txt). */
#define WIRE_FEATURE_RECONNECTION 1
#define WIRE_FEATURE_ERROR 2

/* DOMID_SELF: IS_DOMAIN_INTRODUCED answers "T" for it. */
#define WIRE_DOMID_SELF 0x7FF0u

/*
 * The name of a message type ("READ"), or NULL for a number that names no
 * type. Used for traces and logs.
 */
const char *wire_type_name(uint32_t type);

/*
 * The xenstore error string for a negative errno ("ENOENT"), as the
 * xsd_errors[] table of xs_wire.h spells it. An errno the table does not
 * hold maps to "EINVAL", as in cxenstored; *known is set to false then
 * (known may be NULL).
 */
const char *wire_errno_name(int neg_errno, bool *known);

/* The negative errno for an error string, or -EINVAL if unknown. */
int wire_errno_from_name(const char *name);

/*
 * Count the NUL-terminated strings in buf[0..len): the number of NUL bytes,
 * as xs_count_strings() does. Bytes after the last NUL do not count.
 */
unsigned int wire_count_strings(const char *buf, size_t len);

/*
 * Split a payload into up to `max` NUL-terminated strings. Fills argv with
 * pointers into buf and returns the total number of NUL-terminated strings
 * (which may exceed max; only the first max are stored), like cxenstored's
 * get_strings().
 */
unsigned int wire_split(const char *buf, size_t len, const char **argv,
			unsigned int max);

/*
 * The payload as exactly one string: it must be non-empty and its only NUL
 * must be its last byte (cxenstored's onearg()). NULL otherwise.
 */
const char *wire_onearg(const char *buf, size_t len);

/* Encode/decode a header in native byte order (as the protocol does). */
void wire_hdr_encode(const struct wire_hdr *h, uint8_t out[WIRE_HDR_SIZE]);
void wire_hdr_decode(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h);

#endif
