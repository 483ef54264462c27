/*
 * tests/bench/floors.c: the fsync and rtt workloads, the physical floors
 * under any daemon's figures: the disk's durable 4 KiB write and one
 * loopback round trip with a child process. No daemon, no engine.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/bench/bench_int.h"

void floors_fsync(struct bench *b)
{
	char path[PATH_MAX], block[4096];
	uint64_t i, n = b->ops_opt ? b->ops_opt : 200;
	int fd;

	snprintf(path, sizeof(path), "%s/xsbench-fsync.%d", b->dir, (int)getpid());
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		bench_die("fsync: %s: %s", path, strerror(errno));
	memset(block, 'f', sizeof(block));
	/* allocate first, as libraft preallocates its segments */
	if (posix_fallocate(fd, 0, (off_t)(n * sizeof(block))) || fdatasync(fd))
		bench_die("fsync: cannot allocate %s", path);
	b->t_start = bench_now_ns();
	b->deadline = b->t_start + (uint64_t)(b->duration_s * 1e9);
	for (i = 0; i < n && bench_now_ns() < b->deadline; i++) {
		uint64_t t0 = bench_now_ns();

		if (pwrite(fd, block, sizeof(block), (off_t)(i * sizeof(block))) !=
			    (ssize_t)sizeof(block) || fdatasync(fd))
			bench_die("fsync: %s: %s", path, strerror(errno));
		stats_op_done(b, t0);
		b->reqs++;
	}
	close(fd);
	unlink(path);
}

void floors_rtt(struct bench *b)
{
	char msg[48];
	uint64_t i, n = b->ops_opt ? b->ops_opt : 10000;
	int sv[2], st;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		bench_die("socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (!pid) {
		close(sv[0]);
		for (;;) {
			ssize_t r = read(sv[1], msg, sizeof(msg));

			if (r <= 0 || write(sv[1], msg, (size_t)r) != r)
				_exit(0);
		}
	}
	close(sv[1]);
	memset(msg, 'r', sizeof(msg));
	b->t_start = bench_now_ns();
	b->deadline = b->t_start + (uint64_t)(b->duration_s * 1e9);
	for (i = 0; i < n && bench_now_ns() < b->deadline; i++) {
		uint64_t t0 = bench_now_ns();
		size_t got = 0;

		if (write(sv[0], msg, sizeof(msg)) != (ssize_t)sizeof(msg))
			bench_die("rtt: write: %s", strerror(errno));
		while (got < sizeof(msg)) {
			ssize_t r = read(sv[0], msg + got, sizeof(msg) - got);

			if (r <= 0)
				bench_die("rtt: read failed");
			got += (size_t)r;
		}
		stats_op_done(b, t0);
		b->reqs++;
	}
	close(sv[0]);
	waitpid(pid, &st, 0);
}
