/*
 * consensus/sm_backup.c: the header of backup files (format in sm.h):
 * writing it, and checking a file before its snapshot is trusted. Pure:
 * the daemon reads and writes the files (node/backup.c).
 */
#include "consensus/sm.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "wire/le.h"

/* CRC-32C, reflected polynomial 0x82F63B78, bit by bit: backups are
 * written and read rarely, a table is not worth its state. */
uint32_t sm_backup_crc32c(uint32_t crc, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	unsigned k;

	crc = ~crc;
	while (len--) {
		crc ^= *p++;
		for (k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1)));
	}
	return ~crc;
}

void sm_backup_header(uint8_t hdr[SM_BACKUP_HDR], uint64_t index,
		      uint64_t term, const void *payload, size_t len)
{
	memcpy(hdr, SM_BACKUP_MAGIC, 8);
	put_le(hdr + 8, SM_BACKUP_VERSION, 4);
	put_le(hdr + 12, SM_BACKUP_HDR, 4);
	put_le(hdr + 16, index, 8);
	put_le(hdr + 24, term, 8);
	put_le(hdr + 32, len, 8);
	put_le(hdr + 40, sm_backup_crc32c(0, payload, len), 4);
	put_le(hdr + 44, sm_backup_crc32c(0, hdr, 44), 4);
}

int sm_backup_check(const void *buf, size_t len, struct sm_backup_info *info,
		    const void **payload, char *why, size_t why_len)
{
	const uint8_t *p = buf;
	uint64_t want;

	memset(info, 0, sizeof(*info));
	if (len < 8 || memcmp(p, SM_BACKUP_MAGIC, 8)) {
		snprintf(why, why_len, "not a xenstored backup (no %s magic "
			 "at its start)", SM_BACKUP_MAGIC);
		return -EINVAL;
	}
	if (len < SM_BACKUP_HDR) {
		snprintf(why, why_len, "truncated: %zu bytes, shorter than "
			 "its %d-byte header", len, SM_BACKUP_HDR);
		return -ENODATA;
	}
	if (sm_backup_crc32c(0, p, 44) != (uint32_t)get_le(p + 44, 4)) {
		snprintf(why, why_len, "its header is damaged (header "
			 "checksum mismatch)");
		return -EILSEQ;
	}
	info->version = (uint32_t)get_le(p + 8, 4);
	if (info->version != SM_BACKUP_VERSION ||
	    get_le(p + 12, 4) != SM_BACKUP_HDR) {
		snprintf(why, why_len, "format version %u, this daemon reads "
			 "version %d only", info->version, SM_BACKUP_VERSION);
		return -EPROTONOSUPPORT;
	}
	info->index = get_le(p + 16, 8);
	info->term = get_le(p + 24, 8);
	want = get_le(p + 32, 8);
	info->payload_len = want;
	if (want != len - SM_BACKUP_HDR) {
		snprintf(why, why_len, "%zu bytes instead of %llu: %s", len,
			 (unsigned long long)(want + SM_BACKUP_HDR),
			 want > len - SM_BACKUP_HDR ? "truncated" : "extended");
		return -ENODATA;
	}
	if (sm_backup_crc32c(0, p + SM_BACKUP_HDR, want) !=
	    (uint32_t)get_le(p + 40, 4)) {
		snprintf(why, why_len, "damaged: the checksum of its %llu "
			 "bytes of state does not match",
			 (unsigned long long)want);
		return -EILSEQ;
	}
	*payload = p + SM_BACKUP_HDR;
	return 0;
}
