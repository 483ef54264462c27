/*
 * tests/test_ring.c: ring I/O against hostile pages, the journal, and the
 * sim backend's files.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "ring/ring.h"

static struct xenstore_domain_interface *new_page(void)
{
	void *p = NULL;

	assert_int_equal(posix_memalign(&p, 4096, 4096), 0);
	memset(p, 0, 4096);
	return p;
}

/* The guest side: produce request bytes. */
static void guest_put(struct xenstore_domain_interface *pg, const void *d,
		      size_t n)
{
	const char *b = d;

	for (size_t i = 0; i < n; i++)
		pg->req[(pg->req_prod + i) % XENSTORE_RING_SIZE] = b[i];
	pg->req_prod += (uint32_t)n;
}

static void test_read_write_basic(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	struct ring_io io;
	char buf[2048];
	size_t n;

	ring_io_init(&io, pg, 0, 0);
	assert_false(ring_io_readable(&io));
	guest_put(pg, "hello", 5);
	assert_true(ring_io_readable(&io));
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 5);
	assert_memory_equal(buf, "hello", 5);
	/* peeking does not consume */
	assert_int_equal(pg->req_cons, 0);
	ring_io_consume(&io, 5);
	assert_int_equal(pg->req_cons, 5);
	assert_false(ring_io_readable(&io));

	assert_int_equal(ring_io_space(&io), 1024);
	assert_int_equal(ring_io_put(&io, "world", 5, &n), 0);
	assert_int_equal(n, 5);
	assert_int_equal(pg->rsp_prod, 0); /* not yet published */
	ring_io_publish(&io);
	assert_int_equal(pg->rsp_prod, 5);
	assert_memory_equal(pg->rsp, "world", 5);
	free(pg);
}

static void test_wrapped_indexes(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	uint32_t start = UINT32_MAX - 2; /* free-running, about to wrap */
	char msg[100], buf[200];
	struct ring_io io;
	size_t n;

	for (int i = 0; i < 100; i++)
		msg[i] = (char)i;
	pg->req_prod = pg->req_cons = start;
	pg->rsp_cons = pg->rsp_prod = start;
	ring_io_init(&io, pg, start, start);
	guest_put(pg, msg, 100);
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 100);
	assert_memory_equal(buf, msg, 100);
	ring_io_consume(&io, n);
	assert_int_equal(pg->req_cons, start + 100);

	assert_int_equal(ring_io_put(&io, msg, 100, &n), 0);
	assert_int_equal(n, 100);
	ring_io_publish(&io);
	assert_int_equal(pg->rsp_prod, (uint32_t)(start + 100));
	/* the bytes straddle the end of the ring */
	for (int i = 0; i < 100; i++)
		assert_int_equal(
			pg->rsp[(uint32_t)(start + i) % XENSTORE_RING_SIZE],
			(char)i);
	free(pg);
}

static void test_chunk_across_wrap_point(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	char buf[64], hdr[16];
	struct ring_io io;
	size_t n;

	/* a 16-byte header whose first 6 bytes end the ring */
	pg->req_cons = pg->req_prod = 1018;
	ring_io_init(&io, pg, 1018, 0);
	for (int i = 0; i < 16; i++)
		hdr[i] = (char)(0xa0 + i);
	guest_put(pg, hdr, 16);
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 16);
	assert_memory_equal(buf, hdr, 16);
	free(pg);
}

static void test_prod_far_ahead(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	struct ring_io io;
	char buf[16];
	size_t n = 99;

	ring_io_init(&io, pg, 0, 0);
	pg->req_prod = 1025; /* more than a ring ahead of our cons */
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), -EIO);
	assert_int_equal(n, 0);
	pg->req_prod = (uint32_t)-1; /* "behind" us */
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), -EIO);
	pg->req_prod = 1024; /* exactly a full ring is fine */
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 16); /* bounded by our buffer */
	free(pg);
}

static void test_guest_moves_our_index(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	struct ring_io io;
	char buf[16];
	size_t n;

	ring_io_init(&io, pg, 0, 0);
	guest_put(pg, "abcd", 4);
	/* the guest rewrites req_cons: we never read it back */
	pg->req_cons = 500;
	assert_int_equal(ring_io_peek(&io, buf, sizeof(buf), &n), 0);
	assert_int_equal(n, 4);
	assert_memory_equal(buf, "abcd", 4);
	ring_io_consume(&io, 4);
	assert_int_equal(pg->req_cons, 4);
	free(pg);
}

static void test_rsp_full_and_bad_cons(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	char big[2000] = {0};
	struct ring_io io;
	size_t n;

	ring_io_init(&io, pg, 0, 0);
	assert_int_equal(ring_io_put(&io, big, sizeof(big), &n), 0);
	assert_int_equal(n, 1024);
	assert_int_equal(ring_io_space(&io), 0);
	assert_int_equal(ring_io_put(&io, big, 10, &n), 0);
	assert_int_equal(n, 0);
	pg->rsp_cons = 1000;
	assert_int_equal(ring_io_space(&io), 1000);
	assert_int_equal(ring_io_put(&io, big, sizeof(big), &n), 0);
	assert_int_equal(n, 1000);
	/* the guest claims to have consumed what we never produced */
	pg->rsp_cons = 5000;
	assert_int_equal(ring_io_put(&io, big, 10, &n), -EIO);
	assert_int_equal(ring_io_space(&io), 0);
	free(pg);
}

static void test_fields(void **state)
{
	struct xenstore_domain_interface *pg = new_page();
	struct ring_io io;

	ring_io_init(&io, pg, 7, 9);
	pg->req_prod = 20;
	pg->rsp_cons = 3;
	ring_io_set_features(&io, XENSTORE_SERVER_FEATURE_RECONNECTION |
					  XENSTORE_SERVER_FEATURE_ERROR);
	assert_int_equal(pg->server_features, 3);
	pg->connection = XENSTORE_RECONNECT;
	assert_int_equal(ring_io_connection(&io), XENSTORE_RECONNECT);
	ring_io_set_connection(&io, XENSTORE_CONNECTED);
	assert_int_equal(pg->connection, 0);
	ring_io_set_error(&io, XENSTORE_ERROR_RINGIDX);
	assert_int_equal(ring_io_error(&io), 2);
	ring_io_reset(&io);
	assert_int_equal(pg->req_cons | pg->req_prod | pg->rsp_cons |
				 pg->rsp_prod,
			 0);
	free(pg);
}

static char tmpdir[] = "/tmp/xsr-test-ring-XXXXXX";

static void test_journal(void **state)
{
	struct ring_journal *j;
	char path[256], data[3000], out[3000];
	bool fresh;

	snprintf(path, sizeof(path), "%s/j", tmpdir);
	assert_int_equal(ring_journal_open(path, 42, &j, &fresh), 0);
	assert_true(fresh);
	assert_int_equal(j->ring_id, 42);
	assert_int_equal(ring_journal_held(j), 0);
	for (int i = 0; i < 3000; i++)
		data[i] = (char)(i * 7);
	/* near the end of the buffer, so the copy wraps */
	j->in_base = j->in_end = XSR_RING_JOURNAL_IN_BYTES - 1000;
	ring_journal_append(j, data, sizeof(data));
	assert_int_equal(ring_journal_held(j), 3000);
	ring_journal_copy(j, j->in_base, out, sizeof(out));
	assert_memory_equal(out, data, sizeof(data));
	j->out_pos = 77;
	ring_journal_close(j);

	/* what a restarted daemon finds */
	assert_int_equal(ring_journal_open(path, 42, &j, &fresh), 0);
	assert_false(fresh);
	assert_int_equal(j->out_pos, 77);
	assert_int_equal(ring_journal_held(j), 3000);
	ring_journal_close(j);

	/* another introduction of the domain: start afresh */
	assert_int_equal(ring_journal_open(path, 43, &j, &fresh), 0);
	assert_true(fresh);
	assert_int_equal(j->out_pos, 0);
	assert_int_equal(j->ring_id, 43);
	/* garbage in the file is not trusted */
	j->in_end = j->in_base + XSR_RING_JOURNAL_IN_BYTES + 1;
	ring_journal_close(j);
	assert_int_equal(ring_journal_open(path, 43, &j, &fresh), 0);
	assert_true(fresh);
	ring_journal_close(j);
	unlink(path);
}

static void test_sim_backend(void **state)
{
	struct ring_backend *b;
	struct ring_dominfo di;
	char dir[256], path[300], err[256], line[256];
	uint32_t port, local, v;
	void *page, *page0;
	int fd, rfd;
	FILE *f;

	snprintf(dir, sizeof(dir), "%s/sim", tmpdir);
	assert_int_equal(ring_backend_open("bogus", &b, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "sim:DIR"));
	assert_int_equal(ring_backend_open("sim:", &b, err, sizeof(err)),
			 -EINVAL);
	snprintf(path, sizeof(path), "sim:%s", dir);
	assert_int_equal(ring_backend_open(path, &b, err, sizeof(err)), 0);
	assert_string_equal(ring_backend_name(b), "sim");

	/* VIRQ is port 1; interdomain binds are logged */
	assert_int_equal(ring_backend_bind_virq(b, &port), 0);
	assert_int_equal(port, 1);
	assert_int_equal(ring_backend_bind(b, 5, 1005, &local), 0);
	assert_int_equal(local, 2);
	snprintf(path, sizeof(path), "%s/ports", dir);
	f = fopen(path, "r");
	assert_non_null(f);
	assert_non_null(fgets(line, sizeof(line), f));
	fclose(f);
	assert_string_equal(line, "bind_interdomain domid=5 remote=1005 "
				  "local=2\n");

	/* an event written to the FIFO is a pending port */
	assert_int_equal(ring_backend_pending(b, &port), -EAGAIN);
	snprintf(path, sizeof(path), "%s/evtchn", dir);
	fd = open(path, O_WRONLY | O_NONBLOCK);
	assert_true(fd >= 0);
	v = 2;
	assert_int_equal(write(fd, &v, 4), 4);
	close(fd);
	assert_int_equal(ring_backend_pending(b, &port), 0);
	assert_int_equal(port, 2);

	/* notifications reach a reader of the notify FIFO */
	ring_backend_notify(b, 2); /* no FIFO: dropped */
	snprintf(path, sizeof(path), "%s/notify", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	rfd = open(path, O_RDONLY | O_NONBLOCK);
	assert_true(rfd >= 0);
	ring_backend_notify(b, 2);
	assert_int_equal(read(rfd, &v, 4), 4);
	assert_int_equal(v, 2);
	close(rfd);

	/* pages are shared files */
	assert_int_equal(ring_backend_map(b, 5, 0, &page), 0);
	((struct xenstore_domain_interface *)page)->req_prod = 33;
	assert_int_equal(ring_backend_dom0(b, &page0, &port), 0);
	assert_int_equal(port, 7);
	ring_backend_unmap(b, 5, page);
	assert_int_equal(ring_backend_map(b, 5, 0, &page), 0);
	assert_int_equal(
		((struct xenstore_domain_interface *)page)->req_prod, 33);
	ring_backend_unmap(b, 5, page);
	ring_backend_unmap(b, 0, page0);

	/* domain states from the list files */
	assert_int_equal(ring_backend_dominfo(b, 9, &di), 0);
	assert_true(di.exists);
	assert_false(di.dying);
	assert_int_equal(ring_backend_dominfo(b, 0x7FF0, &di), 0);
	assert_false(di.exists);
	snprintf(path, sizeof(path), "%s/domains", dir);
	f = fopen(path, "w");
	fputs("0,1 5-9\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/dying", dir);
	f = fopen(path, "w");
	fputs("6\n", f);
	fclose(f);
	assert_int_equal(ring_backend_dominfo(b, 3, &di), 0);
	assert_false(di.exists);
	assert_int_equal(ring_backend_dominfo(b, 7, &di), 0);
	assert_true(di.exists);
	assert_false(di.shutdown);
	assert_int_equal(ring_backend_dominfo(b, 6, &di), 0);
	assert_true(di.exists && di.dying && di.shutdown);
	ring_backend_close(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_read_write_basic),
		cmocka_unit_test(test_wrapped_indexes),
		cmocka_unit_test(test_chunk_across_wrap_point),
		cmocka_unit_test(test_prod_far_ahead),
		cmocka_unit_test(test_guest_moves_our_index),
		cmocka_unit_test(test_rsp_full_and_bad_cons),
		cmocka_unit_test(test_fields),
		cmocka_unit_test(test_journal),
		cmocka_unit_test(test_sim_backend),
	};
	char cmd[300];
	int rc;

	if (!mkdtemp(tmpdir))
		return 1;
	rc = cmocka_run_group_tests(tests, NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	if (system(cmd) != 0)
		rc = rc ? rc : 1;
	return rc;
}
