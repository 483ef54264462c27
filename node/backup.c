/*
 * node/backup.c: `cluster backup FILE` (a consistent snapshot of the whole
 * forest, written by the daemon) and the checks and seeding behind
 * `xenstored --restore FILE` (node/backup.h).
 */
#include "node/backup.h"
#include "node/admin.h"
#include "node/daemon.h"
#include "node/snapshot.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "wire/siphash.h"

/* The digest `cluster verify` computes of a state's encoding. */
static void digest_of(const void *buf, size_t len, uint8_t out[16])
{
	static const uint8_t zero_key[16];

	siphash128(zero_key, buf, len, out);
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	size_t i;

	for (i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", p[i]);
}

/* ---- Writing a backup ----------------------------------------------- */

struct backup_job {
	struct daemon *d;
	struct conn *conn;
	struct conn_req *req;
	uv_work_t work;
	void *pin;
	uint64_t index, term;
	char path[PATH_MAX], tmp[PATH_MAX + 16];
	/* results, from the worker */
	int rc;
	char why[2 * PATH_MAX + 128];
	size_t bytes;
	uint8_t digest[16];
};

static int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	ssize_t n;

	while (len) {
		n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* The directory of path, fsynced: the rename is durable. */
static int sync_dir_of(const char *path)
{
	char dir[PATH_MAX];
	char *slash;
	int fd, rc = 0;

	snprintf(dir, sizeof(dir), "%s", path);
	slash = strrchr(dir, '/');
	if (slash == dir)
		slash[1] = '\0';
	else if (slash)
		*slash = '\0';
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fsync(fd))
		rc = -errno;
	close(fd);
	return rc;
}

/* On the thread pool: only the pinned, immutable state is read. */
static void backup_work(uv_work_t *w)
{
	struct backup_job *j = w->data;
	uint8_t hdr[SM_BACKUP_HDR];
	void *buf = NULL;
	size_t len = 0;
	int fd;

	j->rc = snapshot_write(j->pin, &buf, &len);
	if (j->rc) {
		snprintf(j->why, sizeof(j->why), "cannot encode the state: %s",
			 strerror(-j->rc));
		return;
	}
	sm_backup_header(hdr, j->index, j->term, buf, len);
	digest_of(buf, len, j->digest);
	j->bytes = SM_BACKUP_HDR + len;
	/* a name of its own (mode 0600): two backups to one FILE do not
	 * write into each other's file; the last rename wins */
	fd = mkostemp(j->tmp, O_CLOEXEC);
	if (fd < 0) {
		j->rc = -errno;
		snprintf(j->why, sizeof(j->why), "cannot create %s: %s",
			 j->tmp, strerror(errno));
		free(buf);
		return;
	}
	if ((j->rc = write_all(fd, hdr, sizeof(hdr))) ||
	    (j->rc = write_all(fd, buf, len)) ||
	    (fchmod(fd, 0600) && (j->rc = -errno)) ||
	    (fsync(fd) && (j->rc = -errno)))
		snprintf(j->why, sizeof(j->why), "cannot write %s: %s", j->tmp,
			 strerror(-j->rc));
	if (close(fd) && !j->rc) {
		j->rc = -errno;
		snprintf(j->why, sizeof(j->why), "cannot write %s: %s", j->tmp,
			 strerror(-j->rc));
	}
	free(buf);
	if (!j->rc && rename(j->tmp, j->path)) {
		j->rc = -errno;
		snprintf(j->why, sizeof(j->why), "cannot rename %s to %s: %s",
			 j->tmp, j->path, strerror(-j->rc));
	}
	if (j->rc) {
		unlink(j->tmp);
		return;
	}
	j->rc = sync_dir_of(j->path);
	if (j->rc)
		snprintf(j->why, sizeof(j->why), "cannot sync the directory "
			 "of %s: %s", j->path, strerror(-j->rc));
}

static void backup_after(uv_work_t *w, int status)
{
	struct backup_job *j = w->data;
	struct daemon *d = j->d;
	json_object *o;
	char dg[33];

	snapshot_unpin(d, j->pin);
	if (status && !j->rc) {
		j->rc = status;
		snprintf(j->why, sizeof(j->why), "cancelled");
	}
	if (j->rc) {
		log_msg(3, "backup to %s failed: %s", j->path, j->why);
		o = admin_error(-j->rc, "backup failed: %s", j->why);
	} else {
		hex(j->digest, 16, dg);
		log_msg(5, "backup written to %s: log index %" PRIu64
			   ", term %" PRIu64 ", %zu bytes, digest %s",
			j->path, j->index, j->term, j->bytes, dg);
		o = admin_ok();
		json_object_object_add(o, "file",
				       json_object_new_string(j->path));
		json_object_object_add(o, "index", admin_u64(j->index));
		json_object_object_add(o, "term", admin_u64(j->term));
		json_object_object_add(o, "bytes", admin_u64(j->bytes));
		json_object_object_add(o, "digest", json_object_new_string(dg));
	}
	if (d->stopping && conn_is_closed(j->conn)) {
		/* the daemon closed its connections meanwhile: nobody to
		 * answer, and the pool must not be scheduled again */
		json_object_put(o);
	} else {
		admin_send(j->conn, j->req, o);
		conn_async_done(j->conn);
	}
	free(j);
}

enum conn_verdict backup_command(struct daemon *d, struct conn *c,
				 struct conn_req *r, const char **argv,
				 unsigned int argc)
{
	struct backup_job *j;
	const char *path = argc == 2 ? argv[1] : "";

	if (path[0] != '/')
		return admin_reply_now(
			c, r,
			admin_error(EINVAL, "backup: \"%s\" is not an absolute "
				    "path (the daemon writes the file, from "
				    "its own working directory)", path));
	if (strlen(path) >= PATH_MAX)
		return admin_reply_now(
			c, r, admin_error(ENAMETOOLONG, "backup: path too long"));
	j = calloc(1, sizeof(*j));
	if (!j)
		return admin_reply_now(c, r, admin_error(ENOMEM, "backup: "
							 "out of memory"));
	j->d = d;
	j->conn = c;
	j->req = r;
	snprintf(j->path, sizeof(j->path), "%s", path);
	snprintf(j->tmp, sizeof(j->tmp), "%s.tmp.XXXXXX", path);
	/* one index, every host: the store as it is now */
	j->index = store_applied_index(daemon_replica(d));
	j->term = repl_term(d->repl);
	j->pin = snapshot_pin(d);
	j->work.data = j;
	if (!j->pin || uv_queue_work(d->loop, &j->work, backup_work,
				     backup_after)) {
		if (j->pin)
			snapshot_unpin(d, j->pin);
		free(j);
		return admin_reply_now(c, r, admin_error(ENOMEM, "backup: "
							 "out of memory"));
	}
	log_msg(6, "backup of the state at log index %" PRIu64 " to %s",
		j->index, path);
	return CONN_ASYNC;
}

/* ---- Restoring one -------------------------------------------------- */

static int read_file(const char *file, void **out, size_t *len, char *why,
		     size_t why_len)
{
	struct stat st;
	char *buf;
	size_t got = 0;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st)) {
		snprintf(why, why_len, "cannot read it: %s", strerror(errno));
		if (fd >= 0)
			close(fd);
		return -errno;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, why_len, "not a regular file");
		close(fd);
		return -EINVAL;
	}
	buf = malloc(st.st_size ? (size_t)st.st_size : 1);
	if (!buf) {
		snprintf(why, why_len, "out of memory for %lld bytes",
			 (long long)st.st_size);
		close(fd);
		return -ENOMEM;
	}
	while (got < (size_t)st.st_size) {
		n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			snprintf(why, why_len, "cannot read it: %s",
				 n ? strerror(errno) : "shorter than its size");
			close(fd);
			free(buf);
			return -EIO;
		}
		got += (size_t)n;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}

int backup_load(const char *file, struct backup_file *b, char *why,
		size_t why_len)
{
	struct store *st = NULL;
	void *again = NULL;
	size_t again_len = 0;
	struct store_pin *pin;
	int rc;

	memset(b, 0, sizeof(*b));
	rc = read_file(file, &b->bytes, &b->len, why, why_len);
	if (rc)
		return rc;
	rc = sm_backup_check(b->bytes, b->len, &b->info, &b->payload, why,
			     why_len);
	if (rc)
		goto fail;
	/* the state itself: it decodes (and passes the store's checker) */
	rc = sm_snapshot_decode(b->payload, b->info.payload_len, &st);
	if (rc) {
		snprintf(why, why_len, "its checksums match but its state "
			 "does not decode (%s): written by a different "
			 "version?", strerror(-rc));
		goto fail;
	}
	if (store_applied_index(st) != b->info.index) {
		snprintf(why, why_len, "its header says log index %llu, its "
			 "state index %llu",
			 (unsigned long long)b->info.index,
			 (unsigned long long)store_applied_index(st));
		rc = -EINVAL;
		goto fail;
	}
	/* and encodes back to the very same bytes */
	pin = store_pin(st);
	rc = pin ? sm_snapshot_encode(pin, &again, &again_len) : -ENOMEM;
	if (pin)
		store_unpin(pin);
	if (!rc && (again_len != b->info.payload_len ||
		    memcmp(again, b->payload, again_len))) {
		snprintf(why, why_len, "its state decodes but does not "
			 "encode back to the same bytes");
		rc = -EINVAL;
	} else if (rc) {
		snprintf(why, why_len, "cannot encode its state again: %s",
			 strerror(-rc));
	}
	free(again);
	store_free(st);
	st = NULL;
	if (rc)
		goto fail;
	digest_of(b->payload, b->info.payload_len, b->digest);
	return 0;

fail:
	store_free(st);
	free(b->bytes);
	b->bytes = NULL;
	return rc;
}

int backup_seed(struct daemon *d, const char *raft_dir,
		const struct backup_file *b, char *why, size_t why_len)
{
	const char *address = d->cfg.cluster.enabled
				      ? d->cfg.cluster.self.raft_address
				      : NULL;
	/* a new cluster, one term after the backup's: a log of the old
	 * cluster then never matches one of the new at the same index */
	uint64_t term = b->info.term + 1;
	char dg[33];
	int rc;

	rc = repl_seed(raft_dir, d->member_id, address, b->payload,
		       b->info.payload_len, b->info.index, term, why, why_len);
	if (rc)
		return rc;
	hex(b->digest, 16, dg);
	log_msg(3, "RESTORED from a backup: a new one-member cluster (member "
		   "%" PRIu64 ", host %s, the only voter) starts from the "
		   "state at log index %" PRIu64 " (term %" PRIu64 ", digest "
		   "%s, byte-identical to the backup); grow it with `xsadm "
		   "cluster add`",
		d->member_id, d->host, b->info.index, b->info.term, dg);
	return 0;
}
