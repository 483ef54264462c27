/*
 * ring/journal.c: the restart journal of a ring connection, a shared file
 * mapping (see ring.h for what it holds and why it is cheap).
 */
#include "ring/ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The kernel's id of this boot ("" if it has none). */
static void boot_id(char out[40])
{
	ssize_t n = 0;
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);

	memset(out, 0, 40);
	if (fd >= 0) {
		n = read(fd, out, 39);
		close(fd);
	}
	if (n > 0 && out[n - 1] == '\n')
		out[n - 1] = '\0';
}

int ring_journal_open(const char *path, uint64_t ring_id,
		      struct ring_journal **out, bool *fresh)
{
	struct ring_journal *j;
	struct stat st;
	char boot[40];
	int fd, rc;

	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) < 0 ||
	    ((size_t)st.st_size != sizeof(*j) &&
	     ftruncate(fd, (off_t)sizeof(*j)) < 0)) {
		rc = -errno;
		close(fd);
		return rc;
	}
	j = mmap(NULL, sizeof(*j), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	rc = -errno;
	close(fd);
	if (j == MAP_FAILED)
		return rc;
	boot_id(boot);
	*fresh = (size_t)st.st_size != sizeof(*j) ||
		 memcmp(j->boot_id, boot, sizeof(boot)) != 0 ||
		 j->magic != XSR_RING_JOURNAL_MAGIC || j->ring_id != ring_id ||
		 j->in_end - j->in_base > XSR_RING_JOURNAL_IN_BYTES ||
		 j->in_base_seq > j->in_base + 1 || j->in_base_seq == 0 ||
		 j->msg_len > XSR_RING_JOURNAL_MSG_MAX;
	if (*fresh)
		ring_journal_reset(j, ring_id);
	*out = j;
	return 0;
}

void ring_journal_close(struct ring_journal *j)
{
	if (j)
		munmap(j, sizeof(*j));
}

void ring_journal_reset(struct ring_journal *j, uint64_t ring_id)
{
	memset(j, 0, offsetof(struct ring_journal, msg));
	boot_id(j->boot_id);
	j->ring_id = ring_id;
	j->in_base_seq = 1; /* requests are numbered from 1 */
	j->magic = XSR_RING_JOURNAL_MAGIC;
}

void ring_journal_append(struct ring_journal *j, const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n > 0) {
		size_t off = j->in_end % XSR_RING_JOURNAL_IN_BYTES;
		size_t chunk = XSR_RING_JOURNAL_IN_BYTES - off;

		if (chunk > n)
			chunk = n;
		memcpy(j->in + off, b, chunk);
		b += chunk;
		n -= chunk;
		/* the bytes first: a crash in between loses nothing */
		__atomic_thread_fence(__ATOMIC_RELEASE);
		j->in_end += chunk;
	}
}

void ring_journal_copy(const struct ring_journal *j, uint64_t pos, void *p,
		       size_t n)
{
	uint8_t *b = p;

	while (n > 0) {
		size_t off = pos % XSR_RING_JOURNAL_IN_BYTES;
		size_t chunk = XSR_RING_JOURNAL_IN_BYTES - off;

		if (chunk > n)
			chunk = n;
		memcpy(b, j->in + off, chunk);
		b += chunk;
		pos += chunk;
		n -= chunk;
	}
}
