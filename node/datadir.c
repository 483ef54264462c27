/*
 * node/datadir.c: the data directory (node/datadir.h): one daemon per
 * directory (a lock that names its holder), the member identity and its
 * incarnation counter, small files written atomically. Start-up code: a
 * failure here is fatal (log_fatal).
 */
#include "node/datadir.h"
#include "node/daemon.h"
#include "node/hostname.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

char *datadir_absolute(const char *path)
{
	char cwd[PATH_MAX], *out;

	if (!path || path[0] == '/')
		return path ? strdup(path) : NULL;
	if (!getcwd(cwd, sizeof(cwd)))
		return NULL;
	if (asprintf(&out, "%s/%s", cwd, path) < 0)
		return NULL;
	return out;
}

/* Add the bytes of the regular files under the open directory fd (closed
 * here) to *bytes, depth levels deep at most. */
static int size_under(int fd, unsigned depth, uint64_t *bytes)
{
	DIR *dir = fdopendir(fd);
	struct dirent *e;
	struct stat st;

	if (!dir) {
		int rc = -errno;

		close(fd);
		return rc;
	}
	while ((e = readdir(dir))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		/* a file may go (a snapshot replaced) while we look */
		if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue;
		if (S_ISREG(st.st_mode)) {
			*bytes += (uint64_t)st.st_size;
		} else if (S_ISDIR(st.st_mode) && depth > 0) {
			int sub = openat(dirfd(dir), e->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC |
						 O_NOFOLLOW);

			if (sub >= 0)
				(void)size_under(sub, depth - 1, bytes);
		}
	}
	closedir(dir);
	return 0;
}

int datadir_size(const char *dir, uint64_t *bytes)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	*bytes = 0;
	if (fd < 0)
		return -errno;
	return size_under(fd, 4, bytes);
}

int datadir_mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];
	size_t i, len = strlen(path);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (i = 1; i <= len; i++) {
		if (buf[i] != '/' && buf[i] != '\0')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, mode) && errno != EEXIST)
			return -errno;
		buf[i] = path[i];
	}
	return 0;
}

/* The pid recorded in a lock file, 0 if none. */
static long lock_holder(int fd)
{
	char text[32];
	ssize_t n = pread(fd, text, sizeof(text) - 1, 0);

	if (n <= 0)
		return 0;
	text[n] = '\0';
	return strtol(text, NULL, 10);
}

static bool pid_alive(long pid)
{
	char path[64], st = '?';
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	f = fopen(path, "re");
	if (!f)
		return false;
	/* "pid (comm) S ...": a zombie has let go of its files */
	if (fscanf(f, "%*d (%*[^)]) %c", &st) != 1)
		st = '?';
	fclose(f);
	return st != 'Z' && st != 'X';
}

bool datadir_locked(const char *data_dir, long *holder)
{
	char path[4096];
	bool held = false;
	int fd;

	if (snprintf(path, sizeof(path), "%s/lock", data_dir) >=
	    (int)sizeof(path))
		return false;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (flock(fd, LOCK_SH | LOCK_NB))
		held = errno == EWOULDBLOCK;
	else
		flock(fd, LOCK_UN);
	if (held && holder)
		*holder = lock_holder(fd);
	close(fd);
	return held;
}

long datadir_running(const char *data_dir, const char *pid_file)
{
	char text[32];
	long holder = 0, named = -1;
	ssize_t n;
	int pf;

	if (!pid_file || !datadir_locked(data_dir, &holder))
		return 0;
	pf = open(pid_file, O_RDONLY | O_CLOEXEC);
	if (pf >= 0) {
		n = read(pf, text, sizeof(text) - 1);
		if (n > 0) {
			text[n] = '\0';
			named = strtol(text, NULL, 10);
		}
		close(pf);
	}
	return holder > 0 && holder == named && pid_alive(holder) ? holder : 0;
}

/*
 * One daemon per data directory: a second one would corrupt the log. A
 * daemon killed a moment ago may still hold the lock while the kernel
 * drains its I/O, so a restart waits for it (LOCK_WAIT_MS, polling) and
 * refuses only if the lock is still held after that. The holder writes
 * its pid into the lock file, so that the wait can say whom it waits for.
 */
#define LOCK_WAIT_MS 10000
#define LOCK_POLL_MS 50

void datadir_lock(const char *data_dir)
{
	char *path, text[32];
	long holder = 0;
	int fd, waited_ms = 0;

	if (asprintf(&path, "%s/lock", data_dir) < 0)
		log_fatal("out of memory");
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		log_fatal("cannot open %s: %s", path, strerror(errno));
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			log_fatal("cannot lock %s: %s", path, strerror(errno));
		if (waited_ms == 0) {
			holder = lock_holder(fd);
			log_msg(5,
				"data directory %s is locked by %s %ld: "
				"waiting up to %d s for it to exit",
				data_dir,
				pid_alive(holder) ? "xenstored pid"
						  : "an exiting process, pid",
				holder, LOCK_WAIT_MS / 1000);
		}
		if (waited_ms >= LOCK_WAIT_MS) {
			holder = lock_holder(fd);
			log_fatal(
			      "data directory %s is in use by another xenstored "
			      "(lock %s held by pid %ld%s for %d s)",
			      data_dir, path, holder,
			      pid_alive(holder) ? "" : ", not running",
			      LOCK_WAIT_MS / 1000);
		}
		usleep(LOCK_POLL_MS * 1000);
		waited_ms += LOCK_POLL_MS;
	}
	if (waited_ms)
		log_msg(5, "data directory %s: lock taken after %d ms",
			data_dir, waited_ms);
	snprintf(text, sizeof(text), "%ld\n", (long)getpid());
	if (ftruncate(fd, 0) || pwrite(fd, text, strlen(text), 0) < 0)
		log_msg(4, "cannot record this pid in %s: %s", path,
			strerror(errno));
	free(path);
	/* fd stays open: the lock lives as long as the process. */
}

/* Write a small file atomically (temporary file, fsync, rename). */
int datadir_write_file(const char *path, const char *text)
{
	char tmp[PATH_MAX];
	int fd;
	ssize_t n;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	n = write(fd, text, strlen(text));
	if (n != (ssize_t)strlen(text) || fsync(fd)) {
		int e = n < 0 ? errno : EIO;

		close(fd);
		unlink(tmp);
		return -e;
	}
	close(fd);
	if (rename(tmp, path))
		return -errno;
	return 0;
}

int datadir_identity_raise(const char *data_dir, const char *host,
			   uint64_t member_id, uint64_t incarnation)
{
	char path[PATH_MAX], text[512];

	snprintf(path, sizeof(path), "%s/identity", data_dir);
	snprintf(text, sizeof(text),
		 "# xenstored member identity: do not edit\nhost=%s\nid=%llu\n"
		 "incarnation=%llu\n",
		 host, (unsigned long long)member_id,
		 (unsigned long long)incarnation);
	return datadir_write_file(path, text);
}

/*
 * The member identity in DATA/identity: host name, member id, and an
 * incarnation counter bumped at every start. Sequence numbers of log
 * entries are (incarnation << 40) + n, so they keep increasing across
 * restarts (at-most-once application).
 */
void datadir_identity(struct config *cfg, struct datadir_identity *out)
{
	char path[PATH_MAX], line[256], host[128] = "";
	unsigned long long id = 1, inc = 0;
	FILE *f;
	int rc;

	/* a cluster member is who its [member] section says */
	if (cfg->cluster.enabled) {
		if (cfg->host_name &&
		    strcmp(cfg->host_name, cfg->cluster.self.name) != 0)
			log_fatal("--host-name %s differs from the config's "
				 "[member] name %s",
			      cfg->host_name, cfg->cluster.self.name);
		free((char *)cfg->host_name);
		cfg->host_name = strdup(cfg->cluster.self.name);
	}
	snprintf(path, sizeof(path), "%s/identity", cfg->data_dir);
	f = fopen(path, "re");
	if (f) {
		while (fgets(line, sizeof(line), f)) {
			if (sscanf(line, "host=%127s", host) == 1)
				continue;
			if (sscanf(line, "id=%llu", &id) == 1)
				continue;
			sscanf(line, "incarnation=%llu", &inc);
		}
		fclose(f);
		if (!host[0])
			log_fatal("%s names no host: the data directory is "
				 "damaged",
			      path);
		if (cfg->host_name && strcmp(cfg->host_name, host) != 0)
			log_fatal(
			      "data directory %s belongs to host \"%s\", not "
			      "\"%s\"",
			      cfg->data_dir, host, cfg->host_name);
		if (cfg->cluster.enabled && id != cfg->cluster.self.id)
			log_fatal(
			      "data directory %s belongs to member %llu, not "
			      "%llu",
			      cfg->data_dir, id,
			      (unsigned long long)cfg->cluster.self.id);
	} else if (errno == ENOENT) {
		if (cfg->host_name) {
			snprintf(host, sizeof(host), "%s", cfg->host_name);
		} else {
			char sys[256];
			bool ok = !gethostname(sys, sizeof(sys) - 1);

			sys[sizeof(sys) - 1] = '\0';
			if (!hostname_default(ok ? sys : NULL, host))
				log_msg(5,
					"system host name \"%s\" is not usable "
					"as this host's name: using \"%s\" "
					"(recorded in %s; --host-name chooses "
					"another at the first start)",
					ok ? sys : "", host, path);
		}
	} else {
		log_fatal("cannot read %s: %s", path, strerror(errno));
	}
	if (!f && cfg->cluster.enabled)
		id = cfg->cluster.self.id;
	if (!hostname_valid(host))
		log_fatal(
		      "host name \"%s\" is not valid (letters, digits, "
		      "'-', '_', '.'; at most 64)",
		      host);
	inc++;
	rc = datadir_identity_raise(cfg->data_dir, host, id, inc);
	if (rc)
		log_fatal("cannot write %s: %s", path, strerror(-rc));
	snprintf(out->host, sizeof(out->host), "%s", host);
	out->member_id = id;
	out->incarnation = inc;
}
