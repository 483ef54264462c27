/*
 * consensus/repl_snapfile.c: our snapshot files on disk: the checksummed
 * header of their data (format in repl_int.h), and the scan at open that
 * refuses damaged snapshots and moves them (and, if need be, the log)
 * aside before libraft reads the data directory.
 */
#include "consensus/repl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "consensus/repl_int.h"
#include "wire/le.h"

/* ---- The data file's header ----------------------------------------- */

/*
 * CRC-32 as libraft's uv backend computes it for its .meta files
 * (polynomial 0x04C11DB7, most significant bit first, initial value 0, no
 * final xor), so one function checks their files and ours. The table is
 * filled once by repl_open, before any thread reads it.
 */
void repl_snapfile_crc_init(uint32_t table[256])
{
	uint32_t c;
	unsigned i, k;

	for (i = 0; i < 256; i++) {
		c = (uint32_t)i << 24;
		for (k = 0; k < 8; k++)
			c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
		table[i] = c;
	}
}

static uint32_t crc_of(const uint32_t table[256], const void *buf, size_t len,
		       uint32_t crc)
{
	const uint8_t *p = buf;

	while (len--)
		crc = (crc << 8) ^ table[((crc >> 24) ^ *p++) & 255];
	return crc;
}

/* Fill hdr for the payload buf. */
void repl_snapfile_envelope(const struct repl *r, uint8_t hdr[SNAP_HDR],
			    const void *buf, size_t len)
{
	memcpy(hdr, SNAP_MAGIC, 8);
	put_le(hdr + 8, len, 8);
	put_le(hdr + 16, crc_of(r->crc_table, buf, len, 0), 4);
	put_le(hdr + 20, 0, 4);
}

/*
 * Check a snapshot's bytes and find the FSM's payload in them: 0, or
 * -EILSEQ (checksum mismatch) or -ENODATA (shorter or longer than its
 * header says), with why filled in either case.
 */
int repl_snapfile_unwrap(const struct repl *r, const void *buf, size_t len,
			 const void **payload, size_t *payload_len, char *why,
			 size_t why_len)
{
	const uint8_t *p = buf;
	uint64_t want;

	*payload = buf;
	*payload_len = len;
	snprintf(why, why_len, "written before snapshots had a checksum");
	if (len < 8 || memcmp(p, SNAP_MAGIC, 8))
		return 0;
	want = len >= SNAP_HDR ? get_le(p + 8, 8) : 0;
	if (len < SNAP_HDR || want != len - SNAP_HDR) {
		snprintf(why, why_len, "%zu bytes instead of %llu: truncated "
			 "or extended", len,
			 (unsigned long long)(want + SNAP_HDR));
		return -ENODATA;
	}
	if (crc_of(r->crc_table, p + SNAP_HDR, want, 0) !=
	    (uint32_t)get_le(p + 16, 4)) {
		snprintf(why, why_len, "checksum mismatch");
		return -EILSEQ;
	}
	snprintf(why, why_len, "checksum good");
	*payload = p + SNAP_HDR;
	*payload_len = want;
	return 0;
}

/* ---- Damaged snapshots, at open ------------------------------------- */

/* A snapshot in the data directory, from the name of its .meta file. */
struct snap_file {
	unsigned long long term, index, stamp;
	char name[80]; /* "snapshot-TERM-INDEX-TIMESTAMP", without ".meta" */
	bool damaged;
};

/* What the data directory holds, as far as the scan cares. */
struct dir_list {
	struct snap_file *snaps; /* newest first */
	size_t n_snaps;
	char (*segs)[80];	  /* closed and open segment files */
	size_t n_segs;
	unsigned long long first_closed; /* lowest first index; 0: none */
};

/* Newest first, the order libraft tries them in (term, index, time). */
static int snap_file_cmp(const void *a, const void *b)
{
	const struct snap_file *x = a, *y = b;

	if (x->term != y->term)
		return x->term > y->term ? -1 : 1;
	if (x->index != y->index)
		return x->index > y->index ? -1 : 1;
	if (x->stamp != y->stamp)
		return x->stamp > y->stamp ? -1 : 1;
	return 0;
}

/* Whether name is exactly fmt (libraft's file names), reading n numbers. */
static bool name_is(const char *name, const char *fmt, int n,
		    unsigned long long *a, unsigned long long *b,
		    unsigned long long *c)
{
	int used = -1;

	switch (n) {
	case 1:
		sscanf(name, fmt, a, &used);
		break;
	case 2:
		sscanf(name, fmt, a, b, &used);
		break;
	default:
		sscanf(name, fmt, a, b, c, &used);
		break;
	}
	return used > 0 && name[used] == '\0';
}

static void dir_list_free(struct dir_list *l)
{
	free(l->snaps);
	free(l->segs);
}

/* Append name to the list; -ENOMEM. */
static int dir_list_add(struct dir_list *l, const char *name,
			unsigned long long t, unsigned long long i,
			unsigned long long s, bool snapshot)
{
	void *p;

	if (snapshot) {
		p = realloc(l->snaps, (l->n_snaps + 1) * sizeof(*l->snaps));
		if (!p)
			return -ENOMEM;
		l->snaps = p;
		l->snaps[l->n_snaps] = (struct snap_file){t, i, s, "", false};
		snprintf(l->snaps[l->n_snaps].name, sizeof(l->snaps->name),
			 "%.*s", (int)(strlen(name) - 5), name);
		l->n_snaps++;
		return 0;
	}
	p = realloc(l->segs, (l->n_segs + 1) * sizeof(*l->segs));
	if (!p)
		return -ENOMEM;
	l->segs = p;
	snprintf(l->segs[l->n_segs++], sizeof(*l->segs), "%s", name);
	return 0;
}

/* List the snapshots and segments of dir: 0 or a negative errno. */
static int dir_list_read(const char *dir, struct dir_list *l)
{
	unsigned long long a, b, c;
	struct dirent *e;
	DIR *d;
	int rc = 0;

	memset(l, 0, sizeof(*l));
	d = opendir(dir);
	if (!d)
		return -errno;
	while (!rc && (e = readdir(d))) {
		if (strlen(e->d_name) >= sizeof(l->snaps->name))
			continue;
		if (name_is(e->d_name, "snapshot-%llu-%llu-%llu.meta%n", 3, &a,
			    &b, &c)) {
			rc = dir_list_add(l, e->d_name, a, b, c, true);
		} else if (name_is(e->d_name, "%16llu-%16llu%n", 2, &a, &b,
				   NULL)) {
			if (!l->first_closed || a < l->first_closed)
				l->first_closed = a;
			rc = dir_list_add(l, e->d_name, 0, 0, 0, false);
		} else if (name_is(e->d_name, "open-%llu%n", 1, &a, NULL,
				   NULL)) {
			rc = dir_list_add(l, e->d_name, 0, 0, 0, false);
		}
	}
	closedir(d);
	if (!rc && l->n_snaps)
		qsort(l->snaps, l->n_snaps, sizeof(*l->snaps), snap_file_cmp);
	if (rc)
		dir_list_free(l);
	return rc;
}

/* Read dir/name whole into a malloc()ed buffer: 0 or a negative errno. */
static int file_read(const char *dir, const char *name, uint8_t **buf,
		     size_t *len)
{
	char path[PATH_MAX + 96];
	struct stat st;
	size_t got = 0;
	ssize_t n;
	int fd, rc = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0) {
		rc = -errno;
		goto out;
	}
	*buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!*buf) {
		rc = -ENOMEM;
		goto out;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, *buf + got, (size_t)st.st_size - got);
		if (n <= 0) {
			rc = n < 0 ? -errno : -ENODATA;
			free(*buf);
			goto out;
		}
		got += (size_t)n;
	}
	*len = got;
out:
	close(fd);
	return rc;
}

/*
 * Check a snapshot's .meta file as libraft's uv backend will read it
 * (src/uv_snapshot.c): four u64 LE (format 1, CRC-32, configuration index,
 * configuration length), then the configuration; the CRC covers the last
 * two words and the configuration. 0 or -EILSEQ with why filled in.
 */
#define META_MAX_CONF (1024 * 1024)

static int snap_meta_check(const struct repl *r, const uint8_t *p, size_t len,
			   char *why, size_t why_len)
{
	uint64_t conf_len;
	uint32_t crc;

	if (len < 32) {
		snprintf(why, why_len, ".meta has %zu bytes: truncated", len);
		return -EILSEQ;
	}
	conf_len = get_le(p + 24, 8);
	if (get_le(p, 8) != 1 || conf_len == 0 || conf_len > META_MAX_CONF ||
	    len - 32 < conf_len) {
		snprintf(why, why_len, ".meta header is not valid (format "
			 "%llu, configuration of %llu bytes in %zu)",
			 (unsigned long long)get_le(p, 8),
			 (unsigned long long)conf_len, len);
		return -EILSEQ;
	}
	crc = crc_of(r->crc_table, p + 16, 16, 0);
	crc = crc_of(r->crc_table, p + 32, conf_len, crc);
	if (crc != (uint32_t)get_le(p + 8, 8)) {
		snprintf(why, why_len, ".meta checksum mismatch");
		return -EILSEQ;
	}
	return 0;
}

/*
 * Whether snapshot s of dir is intact: its .meta as libraft checks it,
 * its data by our envelope. 0, -ENOENT (no data file: a snapshot being
 * written, libraft skips it too), or another negative errno with why
 * filled in.
 */
static int snap_file_check(const struct repl *r, const char *dir,
			   const struct snap_file *s, char *why, size_t why_len)
{
	char meta[sizeof(s->name) + 8];
	const void *payload;
	size_t len, plen;
	uint8_t *buf;
	int rc;

	snprintf(meta, sizeof(meta), "%s.meta", s->name);
	rc = file_read(dir, s->name, &buf, &len);
	if (rc == -ENOENT)
		return rc;
	if (rc) {
		snprintf(why, why_len, "cannot read it: %s", strerror(-rc));
		return rc;
	}
	if (len == 0)
		snprintf(why, why_len, "empty: truncated");
	else
		rc = repl_snapfile_unwrap(r, buf, len, &payload, &plen, why,
					  why_len);
	free(buf);
	if (len == 0)
		return -ENODATA;
	if (rc)
		return rc;
	rc = file_read(dir, meta, &buf, &len);
	if (rc) {
		snprintf(why, why_len, "cannot read its .meta: %s",
			 strerror(-rc));
		return rc;
	}
	rc = snap_meta_check(r, buf, len, why, why_len);
	free(buf);
	return rc;
}

/* Rename dir/name to dir/name.suffix: 0 or a negative errno, logged. */
static int move_aside(struct repl *r, const char *dir, const char *name,
		      const char *suffix)
{
	char from[PATH_MAX + 96], to[PATH_MAX + 128];

	snprintf(from, sizeof(from), "%s/%s", dir, name);
	snprintf(to, sizeof(to), "%s.%s", from, suffix);
	if (rename(from, to) == 0)
		return 0;
	repl_logf(r, 3, "cannot move %s aside to %s: %s", from, to,
		  strerror(errno));
	return -errno;
}

/* Move a damaged snapshot and its .meta aside (NAME.damaged). */
static int snap_move_aside(struct repl *r, const char *dir,
			   const struct snap_file *s)
{
	char meta[sizeof(s->name) + 8];
	int rc;

	snprintf(meta, sizeof(meta), "%s.meta", s->name);
	rc = move_aside(r, dir, s->name, "damaged");
	if (!rc)
		rc = move_aside(r, dir, meta, "damaged");
	if (!rc)
		repl_logf(r, 4, "moved %s/%s and its .meta aside to %s.damaged",
			  dir, s->name, s->name);
	return rc;
}

/*
 * Check the snapshots of dir before libraft loads one (libraft would
 * restore a damaged data file as it is, and fail the start on a damaged
 * .meta when no older snapshot is left). Newest first, every damaged
 * one is refused (logged by name) until an intact one is found; the
 * damaged ones are then moved aside. If the log no longer holds the
 * entries between the intact snapshot (or the start) and a damaged one,
 * a cluster of one refuses to start, changing nothing on disk; a cluster
 * member moves its segments aside too (NAME.unusable, metadata kept) so
 * that it opens with what remains and the leader catches it up.
 * Blocking, at open only, like libraft's own load. 0 or a negative errno.
 */
int repl_snapfile_scan(struct repl *r, const char *dir, bool has_peers)
{
	unsigned long long need = 1, lost = 0;
	const struct snap_file *good = NULL;
	struct dir_list l;
	char why[160];
	size_t i, n_bad = 0;
	bool gap;
	int rc;

	rc = dir_list_read(dir, &l);
	if (rc) {
		repl_logf(r, 3, "cannot list %s: %s", dir, strerror(-rc));
		return rc;
	}
	for (i = 0; i < l.n_snaps && !good; i++) {
		rc = snap_file_check(r, dir, &l.snaps[i], why, sizeof(why));
		if (rc == -ENOENT)
			continue;
		if (!rc) {
			good = &l.snaps[i];
			break;
		}
		repl_logf(r, 3, "snapshot %s/%s is damaged (%s): refused", dir,
			  l.snaps[i].name, why);
		l.snaps[i].damaged = true;
		n_bad++;
		if (l.snaps[i].index > lost)
			lost = l.snaps[i].index;
	}
	rc = 0;
	if (!n_bad)
		goto out;
	if (good)
		need = good->index + 1;
	/* the entries up to `lost` must come from the log, from `need` on */
	gap = lost >= need && (!l.first_closed || l.first_closed > need);
	if (gap && !has_peers) {
		repl_logf(r, 3,
			  "cannot recover alone: entries %llu..%llu are only "
			  "in the damaged snapshot (the log in %s %s%llu); "
			  "restore the data directory from a backup; nothing "
			  "was changed on disk",
			  need, lost, dir,
			  l.first_closed ? "starts at entry "
					 : "has no entries before ",
			  l.first_closed ? l.first_closed : lost + 1);
		rc = -EILSEQ;
		goto out;
	}
	for (i = 0; i < l.n_snaps && !rc; i++)
		if (l.snaps[i].damaged)
			rc = snap_move_aside(r, dir, &l.snaps[i]);
	if (!rc && gap) {
		for (i = 0; i < l.n_segs && !rc; i++)
			rc = move_aside(r, dir, l.segs[i], "unusable");
		if (!rc)
			repl_logf(r, 4,
				  "the log in %s does not reach back to entry "
				  "%llu: moved its %zu segment files aside "
				  "(*.unusable); term and vote kept, the "
				  "leader catches this member up",
				  dir, need, l.n_segs);
	}
	if (!rc)
		repl_logf(r, 5, "starting from %s%s and the log after it",
			  good ? "the older snapshot " : "no snapshot",
			  good ? good->name : "");
out:
	dir_list_free(&l);
	return rc;
}
