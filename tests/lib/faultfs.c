/*
 * tests/lib/faultfs.c: an LD_PRELOAD shim that makes the disk "lose" its
 * writes, for tests/e2e/test_diskfaults.py. Once the file named by
 * XSR_FAULTFS_TRIGGER exists (the test creates it after start-up), every
 * fsync() and fdatasync() fails with EIO, and so does every write that
 * libraft's uv backend submits through kernel AIO (it writes the log with
 * RWF_DSYNC, so that is how a failed sync of the log reaches it): the
 * completion events that io_getevents() returns are rewritten to -EIO.
 * The data itself is written; only the report of its durability fails, as
 * with a real fsync error. Nothing happens until the trigger exists.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <linux/aio_abi.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Whether the trigger file exists (once it did, for good). */
static bool armed(void)
{
	static volatile int on;
	const char *path;

	if (on)
		return true;
	path = getenv("XSR_FAULTFS_TRIGGER");
	if (!path || access(path, F_OK) != 0)
		return false;
	on = 1;
	fprintf(stderr, "faultfs: %s exists: fsync, fdatasync and AIO "
		"writes fail with EIO from now on\n", path);
	return true;
}

int fsync(int fd)
{
	static int (*real)(int);

	if (armed()) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	return real(fd);
}

int fdatasync(int fd)
{
	static int (*real)(int);

	if (armed()) {
		errno = EIO;
		return -1;
	}
	if (!real)
		real = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	return real(fd);
}

/*
 * libraft calls io_submit/io_getevents through syscall(2) (glibc has no
 * wrappers): take syscall() over, pass everything through, and fail the
 * AIO completions once armed. Six arguments is what the kernel takes.
 */
long syscall(long nr, ...)
{
	static long (*real)(long, ...);
	struct io_event *ev;
	long a[6], rc, i;
	va_list ap;

	va_start(ap, nr);
	for (i = 0; i < 6; i++)
		a[i] = va_arg(ap, long);
	va_end(ap);
	if (!real)
		real = (long (*)(long, ...))dlsym(RTLD_NEXT, "syscall");
	rc = real(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	if (nr == SYS_io_getevents && rc > 0 && armed()) {
		ev = (struct io_event *)a[3];
		for (i = 0; i < rc; i++)
			if (ev[i].res >= 0)
				ev[i].res = -EIO;
	}
	return rc;
}
