/*
 * wire/xs_msg.c: type names, the error table and payload splitting of the
 * xenstore wire protocol (xs_wire.h).
 */
#include "wire/xs_msg.h"

#include <errno.h>
#include <string.h>

static const char *const type_names[WIRE_TYPE_COUNT] = {
	[WIRE_CONTROL] = "CONTROL",
	[WIRE_DIRECTORY] = "DIRECTORY",
	[WIRE_READ] = "READ",
	[WIRE_GET_PERMS] = "GET_PERMS",
	[WIRE_WATCH] = "WATCH",
	[WIRE_UNWATCH] = "UNWATCH",
	[WIRE_TRANSACTION_START] = "TRANSACTION_START",
	[WIRE_TRANSACTION_END] = "TRANSACTION_END",
	[WIRE_INTRODUCE] = "INTRODUCE",
	[WIRE_RELEASE] = "RELEASE",
	[WIRE_GET_DOMAIN_PATH] = "GET_DOMAIN_PATH",
	[WIRE_WRITE] = "WRITE",
	[WIRE_MKDIR] = "MKDIR",
	[WIRE_RM] = "RM",
	[WIRE_SET_PERMS] = "SET_PERMS",
	[WIRE_WATCH_EVENT] = "WATCH_EVENT",
	[WIRE_ERROR] = "ERROR",
	[WIRE_IS_DOMAIN_INTRODUCED] = "IS_DOMAIN_INTRODUCED",
	[WIRE_RESUME] = "RESUME",
	[WIRE_SET_TARGET] = "SET_TARGET",
	[WIRE_RESTRICT] = "RESTRICT",
	[WIRE_RESET_WATCHES] = "RESET_WATCHES",
	[WIRE_DIRECTORY_PART] = "DIRECTORY_PART",
	[WIRE_GET_FEATURE] = "GET_FEATURE",
	[WIRE_SET_FEATURE] = "SET_FEATURE",
	[WIRE_GET_QUOTA] = "GET_QUOTA",
	[WIRE_SET_QUOTA] = "SET_QUOTA",
};

const char *wire_type_name(uint32_t type)
{
	if (type < WIRE_TYPE_COUNT)
		return type_names[type];
	return NULL;
}

/* xsd_errors[] of xs_wire.h: the order is ABI, new errors go at the end. */
static const struct {
	int errnum;
	const char *name;
} errors[] = {
	{EINVAL, "EINVAL"}, {EACCES, "EACCES"},	      {EEXIST, "EEXIST"},
	{EISDIR, "EISDIR"}, {ENOENT, "ENOENT"},	      {ENOMEM, "ENOMEM"},
	{ENOSPC, "ENOSPC"}, {EIO, "EIO"},	      {ENOTEMPTY, "ENOTEMPTY"},
	{ENOSYS, "ENOSYS"}, {EROFS, "EROFS"},	      {EBUSY, "EBUSY"},
	{EAGAIN, "EAGAIN"}, {EISCONN, "EISCONN"},     {E2BIG, "E2BIG"},
	{EPERM, "EPERM"},
};

const char *wire_errno_name(int neg_errno, bool *known)
{
	size_t i;

	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++) {
		if (errors[i].errnum == -neg_errno) {
			if (known)
				*known = true;
			return errors[i].name;
		}
	}
	if (known)
		*known = false;
	return "EINVAL";
}

int wire_errno_from_name(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
		if (strcmp(errors[i].name, name) == 0)
			return -errors[i].errnum;
	return -EINVAL;
}

unsigned int wire_count_strings(const char *buf, size_t len)
{
	unsigned int n = 0;
	const char *p = buf, *end = buf + len;

	while (p < end && (p = memchr(p, 0, (size_t)(end - p))) != NULL) {
		n++;
		p++;
	}
	return n;
}

unsigned int wire_split(const char *buf, size_t len, const char **argv,
			unsigned int max)
{
	unsigned int n = 0;
	size_t off = 0;
	const char *nul;

	while (off < len && (nul = memchr(buf + off, 0, len - off)) != NULL) {
		if (n < max)
			argv[n] = buf + off;
		n++;
		off = (size_t)(nul - buf) + 1;
	}
	return n;
}

const char *wire_onearg(const char *buf, size_t len)
{
	if (len == 0 || memchr(buf, 0, len) != buf + len - 1)
		return NULL;
	return buf;
}

void wire_hdr_encode(const struct wire_hdr *h, uint8_t out[WIRE_HDR_SIZE])
{
	memcpy(out, &h->type, 4);
	memcpy(out + 4, &h->req_id, 4);
	memcpy(out + 8, &h->tx_id, 4);
	memcpy(out + 12, &h->len, 4);
}

void wire_hdr_decode(const uint8_t in[WIRE_HDR_SIZE], struct wire_hdr *h)
{
	memcpy(&h->type, in, 4);
	memcpy(&h->req_id, in + 4, 4);
	memcpy(&h->tx_id, in + 8, 4);
	memcpy(&h->len, in + 12, 4);
}
