/*
 * tests/test_sm.c: log entries of the domain registry and of guests' ring
 * requests: applied once even when a restarted daemon submits a request
 * again, refused from a ring session that is over, and carried by
 * snapshots.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "consensus/sm.h"
#include "node/store/store.h"

#define H "h1"

static uint64_t index_ = 1;

static void apply(struct store *st, void *buf, size_t len,
		  struct sm_result *res)
{
	char msg[256];

	sm_apply(st, index_++, buf, len, res);
	free(buf);
	/* the whole store's invariants after every entry (store_check.c) */
	if (store_check_report(st, msg, sizeof(msg)) != 0)
		fail_msg("store_check after an applied entry: %s", msg);
}

static struct store_caller guest(uint32_t domid)
{
	struct store_caller c = {.domid = domid,
				 .privileged = false,
				 .target = STORE_NO_TARGET,
				 .quota = STORE_QUOTA_INIT};
	return c;
}

static void test_ring_requests_once(void **state)
{
	struct store *st = store_new_keyed(store_hash_key_default);
	struct store_caller g = guest(3);
	struct sm_origin o = {7, 1, H, NULL, 0, 0};
	struct sm_result res;
	const char *v;
	uint64_t ring_id;
	size_t len, vl;
	void *buf;

	assert_non_null(st);
	assert_int_equal(sm_entry_host_init(&o, NULL, &buf, &len), 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, 0);
	sm_result_clear(&res);

	/* dom0 introduces domain 3 and gives it a home */
	o.seq = 2;
	assert_int_equal(sm_entry_introduce(&o, 3, 0xfeff, 1003, true, false, 0,
					    &buf, &len),
			 0);
	ring_id = index_;
	apply(st, buf, len, &res);
	assert_int_equal(res.kind, SM_DOMAIN);
	assert_int_equal(res.dom_op, SM_DOM_INTRODUCE);
	assert_int_equal(res.domid, 3);
	assert_int_equal(res.result, 0);
	assert_int_equal(res.events.n, 1); /* @introduceDomain */
	sm_result_clear(&res);
	assert_int_equal(store_domain_get(st, H, 3)->ring_id, ring_id);
	o.seq = 3;
	assert_int_equal(sm_entry_write(&o, "/local/domain/3/data", "", 0,
					&buf, &len),
			 0);
	apply(st, buf, len, &res);
	sm_result_clear(&res);
	{
		struct store_perm p = {.domid = 3};

		o.seq = 4;
		assert_int_equal(sm_entry_set_perms(&o, "/local/domain/3/data",
						    &p, 1, &buf, &len),
				 0);
		apply(st, buf, len, &res);
		assert_int_equal(res.result, 0);
		sm_result_clear(&res);
	}

	/* the guest's request number 5 on its ring: an rm of nothing */
	o.seq = 5;
	o.caller = &g;
	o.ring_id = ring_id;
	o.ring_seq = 5;
	assert_int_equal(sm_entry_write(&o, "/local/domain/3/data/x", "1", 1,
					&buf, &len),
			 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, 0);
	assert_false(res.duplicate);
	sm_result_clear(&res);

	/* a restarted daemon read it again and submits it anew */
	o.seq = 900; /* a new incarnation's numbers */
	assert_int_equal(sm_entry_write(&o, "/local/domain/3/data/x", "2", 1,
					&buf, &len),
			 0);
	apply(st, buf, len, &res);
	assert_true(res.duplicate);
	assert_true(res.result_known);
	assert_int_equal(res.result, 0);
	assert_int_equal(res.events.n, 0);
	sm_result_clear(&res);
	assert_int_equal(store_read(st, H, NULL, &g, "/local/domain/3/data/x",
				    &v, &vl),
			 0);
	assert_int_equal(vl, 1);
	assert_int_equal(v[0], '1');

	/* its next request is new */
	o.seq = 901;
	o.ring_seq = 6;
	assert_int_equal(sm_entry_watch(&o, 3, "data", "tok", 128, false, &buf,
					&len),
			 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.dom_op, SM_DOM_WATCH);
	assert_int_equal(res.result, 0);
	assert_string_equal(res.watch_path, "data");
	sm_result_clear(&res);
	assert_int_equal(store_domain_get(st, H, 3)->nwatches, 1);

	/* the domain is introduced again: requests of the old ring are
	 * refused, whatever their number */
	o.caller = NULL;
	o.ring_id = o.ring_seq = 0;
	o.seq = 902;
	assert_int_equal(sm_entry_introduce(&o, 3, 0xfeff, 2003, true, false, 0,
					    &buf, &len),
			 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.events.n, 0); /* not new: no event */
	sm_result_clear(&res);
	assert_int_equal(store_domain_get(st, H, 3)->nwatches, 0);
	o.caller = &g;
	o.ring_id = ring_id;
	o.ring_seq = 7;
	o.seq = 903;
	assert_int_equal(sm_entry_write(&o, "/local/domain/3/data/y", "1", 1,
					&buf, &len),
			 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, -EIO);
	sm_result_clear(&res);

	/* snapshots carry the registry */
	{
		struct store_pin *pin = store_pin(st);
		struct store *copy;
		void *snap;
		size_t sl;

		assert_int_equal(sm_snapshot_encode(pin, &snap, &sl), 0);
		store_unpin(pin);
		assert_int_equal(sm_snapshot_decode(snap, sl, &copy), 0);
		free(snap);
		assert_int_equal(store_domain_get(copy, H, 3)->port, 2003);
		store_free(copy);
	}

	/* RELEASE: the domain and its nodes go */
	o.caller = NULL;
	o.ring_id = o.ring_seq = 0;
	o.seq = 904;
	assert_int_equal(sm_entry_domain_gone(&o, 3, &buf, &len), 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, 0);
	assert_string_equal(res.events.v[res.events.n - 1].path,
			    "@releaseDomain");
	sm_result_clear(&res);
	assert_null(store_domain_get(st, H, 3));
	{
		struct store_caller dom0 = {.privileged = true,
					    .target = STORE_NO_TARGET,
					    .quota = STORE_QUOTA_INIT};

		assert_int_equal(store_read(st, H, NULL, &dom0,
					    "/local/domain/3/data/x", &v, &vl),
				 -ENOENT);
	}
	store_free(st);
}

static void apply_ok(struct store *st, void *buf, size_t len)
{
	struct sm_result res;

	apply(st, buf, len, &res);
	assert_false(res.fatal);
	assert_true(res.result_known);
	assert_int_equal(res.result, 0);
	sm_result_clear(&res);
}

/* A copy of st through a snapshot. */
static struct store *snapshot_copy(struct store *st)
{
	struct store_pin *pin = store_pin(st);
	struct store *copy;
	void *snap;
	size_t sl;

	assert_non_null(pin);
	assert_int_equal(sm_snapshot_encode(pin, &snap, &sl), 0);
	store_unpin(pin);
	assert_int_equal(sm_snapshot_decode(snap, sl, &copy), 0);
	free(snap);
	return copy;
}

/*
 * Quota settings are replicated state: set by entries, kept by
 * snapshots, moved with a migrating domain, dropped with a dead one.
 */
static void test_quota_settings(void **state)
{
	struct store *st = store_new_keyed(store_hash_key_default), *copy;
	struct sm_origin o = {7, 1, H, NULL, 0, 0};
	const struct store_quota_set *q;
	struct sm_result res;
	struct store_move mv = {.src_host = H, .dst_host = "h2",
				.src_domid = 5, .dst_domid = 9};
	size_t len;
	void *buf;

	assert_non_null(st);
	assert_int_equal(sm_entry_host_init(&o, NULL, &buf, &len), 0);
	apply_ok(st, buf, len);
	o.host = "h2";
	o.seq++;
	assert_int_equal(sm_entry_host_init(&o, NULL, &buf, &len), 0);
	apply_ok(st, buf, len);
	o.host = H;

	/* the host's settings, two items of domain 5, one of domain 4 */
	o.seq++;
	assert_int_equal(sm_entry_quota(&o, STORE_QUOTA_HOST, 0, 5000, &buf,
					&len),
			 0);
	apply_ok(st, buf, len);
	o.seq++;
	assert_int_equal(sm_entry_quota(&o, 5, 1, 3, &buf, &len), 0);
	apply_ok(st, buf, len);
	o.seq++;
	assert_int_equal(sm_entry_quota(&o, 5, 8, 100, &buf, &len), 0);
	apply_ok(st, buf, len);
	o.seq++;
	assert_int_equal(sm_entry_quota(&o, 4, 1, 2, &buf, &len), 0);
	apply_ok(st, buf, len);
	q = store_quota_get(st, H, 5);
	assert_non_null(q);
	assert_int_equal(q->mask, (1u << 1) | (1u << 8));
	assert_int_equal(q->value[1], 3);
	assert_int_equal(q->value[8], 100);
	assert_int_equal(store_quota_count(st, H), 3);
	/* in domid order, the host's last */
	assert_int_equal(store_quota_at(st, H, 0)->domid, 4);
	assert_int_equal(store_quota_at(st, H, 2)->domid, STORE_QUOTA_HOST);

	/* refusals every replica takes alike */
	o.seq++;
	assert_int_equal(sm_entry_quota(&o, 5, STORE_QUOTA_ITEMS, 1, &buf,
					&len),
			 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, -EINVAL);
	sm_result_clear(&res);
	o.seq++;
	o.host = "nohost";
	assert_int_equal(sm_entry_quota(&o, 5, 1, 1, &buf, &len), 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, -ENOENT);
	sm_result_clear(&res);
	o.host = H;
	{
		struct store_caller guest = {.domid = 5,
					     .target = STORE_NO_TARGET,
					     .quota = STORE_QUOTA_INIT};

		o.seq++;
		o.caller = &guest;
		assert_int_equal(sm_entry_quota(&o, 5, 1, 1000, &buf, &len),
				 0);
		apply(st, buf, len, &res);
		assert_int_equal(res.result, -EACCES);
		sm_result_clear(&res);
		o.caller = NULL;
	}

	/* a snapshot keeps them */
	copy = snapshot_copy(st);
	assert_int_equal(store_quota_count(copy, H), 3);
	assert_memory_equal(store_quota_get(copy, H, 5),
			    store_quota_get(st, H, 5),
			    sizeof(struct store_quota_set));
	assert_int_equal(store_quota_get(copy, H, STORE_QUOTA_HOST)->value[0],
			 5000);
	store_free(copy);

	/* a migrating domain takes its own along */
	o.seq++;
	assert_int_equal(sm_entry_introduce(&o, 5, 0xfeff, 1005, true, false, 0,
					    &buf, &len),
			 0);
	apply_ok(st, buf, len);
	o.seq++;
	assert_int_equal(sm_entry_write(&o, "/local/domain/5/data/k", "v", 1,
					&buf, &len),
			 0);
	apply_ok(st, buf, len);
	o.seq++;
	assert_int_equal(sm_entry_move_domain(&o, &mv, &buf, &len), 0);
	apply_ok(st, buf, len);
	assert_null(store_quota_get(st, H, 5));
	q = store_quota_get(st, "h2", 9);
	assert_non_null(q);
	assert_int_equal(q->domid, 9);
	assert_int_equal(q->value[1], 3);
	assert_int_equal(q->value[8], 100);

	/* a dead domain's settings die with it: a reused domid starts
	 * from the host's */
	o.seq++;
	assert_int_equal(sm_entry_introduce(&o, 4, 0xfefe, 1004, true, false, 0,
					    &buf, &len),
			 0);
	apply_ok(st, buf, len);
	o.seq++;
	assert_int_equal(sm_entry_domain_gone(&o, 4, &buf, &len), 0);
	apply_ok(st, buf, len);
	assert_null(store_quota_get(st, H, 4));
	assert_non_null(store_quota_get(st, H, STORE_QUOTA_HOST));
	store_free(st);
}

/*
 * An entry that needs a newer daemon stops this replica: skipping it or
 * applying it as something else would diverge from the peers.
 */
static void test_newer_entry_stops(void **state)
{
	/* Entry{version = 5, origin = 7, seq = 1, caller{host "h1"},
	 * noop {}} in protobuf */
	static const uint8_t entry[] = {0x08, 0x05, 0x10, 0x07, 0x18, 0x01,
					0x22, 0x04, 0x0a, 0x02, 'h',  '1',
					0x92, 0x01, 0x00};
	struct store *st = store_new_keyed(store_hash_key_default);
	struct sm_result res;

	assert_non_null(st);
	sm_apply(st, 1, entry, sizeof(entry), &res);
	assert_true(res.fatal);
	assert_true(res.fatal_newer);
	assert_int_not_equal(res.kind, SM_NOOP);
	sm_result_clear(&res);
	store_free(st);
}

/* The result of applying one entry, which must not be fatal. */
static int result_of(struct store *st, void *buf, size_t len)
{
	struct sm_result res;
	int rc;

	apply(st, buf, len, &res);
	assert_false(res.fatal);
	assert_true(res.result_known);
	rc = res.result;
	sm_result_clear(&res);
	return rc;
}

/*
 * Entries no request could have produced (a bug, a compromised member)
 * are refused at apply, with the same error on every replica: values,
 * tokens and permission lists bigger than a request carries, member names
 * no host can have.
 */
static void test_oversized_entries_refused(void **state)
{
	struct store *st = store_new_keyed(store_hash_key_default);
	struct sm_origin o = {7, 1, H, NULL, 0, 0};
	static char big[6000];
	struct store_perm *perms;
	struct store_member m = {.id = 9, .raft_address = "127.0.0.1:1",
				 .peer_address = "127.0.0.1:2"};
	size_t len;
	void *buf;
	uint32_t i;

	(void)state;
	assert_non_null(st);
	assert_int_equal(sm_entry_host_init(&o, NULL, &buf, &len), 0);
	assert_int_equal(result_of(st, buf, len), 0);
	memset(big, 'v', sizeof(big));
	o.seq++;
	assert_int_equal(sm_entry_write(&o, "/a", big, sizeof(big), &buf,
					&len),
			 0);
	assert_int_equal(result_of(st, buf, len), -EINVAL);
	o.seq++;
	assert_int_equal(sm_entry_write(&o, "/a", big, 4096, &buf, &len), 0);
	assert_int_equal(result_of(st, buf, len), 0);

	perms = calloc(2000, sizeof(*perms));
	for (i = 0; i < 2000; i++)
		perms[i].domid = i;
	o.seq++;
	assert_int_equal(sm_entry_set_perms(&o, "/a", perms, 2000, &buf, &len),
			 0);
	assert_int_equal(result_of(st, buf, len), -EINVAL);
	free(perms);

	o.seq++;
	assert_int_equal(sm_entry_introduce(&o, 3, 0xfeff, 1003, true, false, 0,
					    &buf, &len),
			 0);
	assert_int_equal(result_of(st, buf, len), 0);
	big[4092] = '\0'; /* "data\0" + 4,092 + NUL > 4,096 */
	o.seq++;
	assert_int_equal(sm_entry_watch(&o, 3, "data", big, 0, false, &buf,
					&len),
			 0);
	assert_int_equal(result_of(st, buf, len), -EINVAL);

	m.name = "bad/name";
	o.seq++;
	assert_int_equal(sm_entry_member(&o, &m, false, &buf, &len), 0);
	assert_int_equal(result_of(st, buf, len), -EINVAL);
	m.name = "good-name";
	o.seq++;
	assert_int_equal(sm_entry_member(&o, &m, false, &buf, &len), 0);
	assert_int_equal(result_of(st, buf, len), 0);
	store_free(st);
}

/* Backup files: every kind of damage is told apart, nothing else passes. */
static void test_backup_header(void **state)
{
	static const char payload[] = "a snapshot's bytes, any bytes";
	const size_t plen = sizeof(payload);
	uint8_t file[SM_BACKUP_HDR + sizeof(payload)], bad[sizeof(file)];
	struct sm_backup_info info;
	const void *p = NULL;
	char why[160];
	size_t i;

	(void)state;
	/* the CRC-32C check value of "123456789" */
	assert_int_equal(sm_backup_crc32c(0, "123456789", 9), 0xE3069283u);
	sm_backup_header(file, 1234, 7, payload, plen);
	memcpy(file + SM_BACKUP_HDR, payload, plen);
	assert_int_equal(sm_backup_check(file, sizeof(file), &info, &p, why,
					 sizeof(why)), 0);
	assert_int_equal(info.index, 1234);
	assert_int_equal(info.term, 7);
	assert_int_equal(info.payload_len, plen);
	assert_ptr_equal(p, file + SM_BACKUP_HDR);
	/* every prefix is refused */
	for (i = 0; i < sizeof(file); i++)
		assert_true(sm_backup_check(file, i, &info, &p, why,
					    sizeof(why)) < 0);
	assert_int_equal(sm_backup_check(file, sizeof(file) - 1, &info, &p,
					 why, sizeof(why)), -ENODATA);
	/* every flipped bit is refused */
	for (i = 0; i < sizeof(file) * 8; i++) {
		memcpy(bad, file, sizeof(file));
		bad[i / 8] ^= (uint8_t)(1u << (i % 8));
		assert_true(sm_backup_check(bad, sizeof(bad), &info, &p, why,
					    sizeof(why)) < 0);
	}
	memcpy(bad, file, sizeof(file));
	bad[SM_BACKUP_HDR + 3] ^= 1;
	assert_int_equal(sm_backup_check(bad, sizeof(bad), &info, &p, why,
					 sizeof(why)), -EILSEQ);
	memcpy(bad, file, sizeof(file));
	bad[0] = 'Y';
	assert_int_equal(sm_backup_check(bad, sizeof(bad), &info, &p, why,
					 sizeof(why)), -EINVAL);
	/* a version it does not know, its header checksum right */
	memcpy(bad, file, sizeof(file));
	bad[8] = 2;
	{
		uint32_t c = sm_backup_crc32c(0, bad, 44);

		bad[44] = (uint8_t)c;
		bad[45] = (uint8_t)(c >> 8);
		bad[46] = (uint8_t)(c >> 16);
		bad[47] = (uint8_t)(c >> 24);
	}
	assert_int_equal(sm_backup_check(bad, sizeof(bad), &info, &p, why,
					 sizeof(why)), -EPROTONOSUPPORT);
	assert_non_null(strstr(why, "version 2"));
}

/*
 * `xl migrate` through the log: the toolstack's suspend request, the new
 * domain's INTRODUCE asking to inherit (a version 4 entry), RESUME.
 */
static void test_introduce_inherits(void **state)
{
	struct store *st = store_new_keyed(store_hash_key_default);
	struct sm_origin o = {7, 1, H, NULL, 0, 0};
	struct store_caller dom0;
	struct sm_result res;
	const char *v;
	size_t vl;
	void *buf;
	size_t len;
	static const struct {
		const char *path, *value;
	} w[] = {
	    {"/local/domain/3/vm", "/vm/u"},
	    {"/local/domain/3/data/k", "kept"},
	    {"/local/domain/3/control/shutdown", "suspend"},
	    {"/local/domain/4/vm", "/vm/u"},
	};
	size_t i;

	assert_non_null(st);
	assert_int_equal(sm_entry_host_init(&o, NULL, &buf, &len), 0);
	apply(st, buf, len, &res);
	sm_result_clear(&res);
	o.seq++;
	assert_int_equal(sm_entry_introduce(&o, 3, 1, 1003, true, false, 0,
					    &buf, &len),
			 0);
	apply(st, buf, len, &res);
	sm_result_clear(&res);
	for (i = 0; i < sizeof(w) / sizeof(w[0]); i++) {
		o.seq++;
		assert_int_equal(sm_entry_write(&o, w[i].path, w[i].value,
						strlen(w[i].value), &buf,
						&len),
				 0);
		apply(st, buf, len, &res);
		assert_int_equal(res.result, 0);
		sm_result_clear(&res);
	}
	assert_true(store_domain_get(st, H, 3)->suspending);
	o.seq++;
	assert_int_equal(sm_entry_introduce(&o, 4, 1, 1004, true, true, 100,
					    &buf, &len),
			 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, 0);
	assert_int_equal(res.dom_op, SM_DOM_INTRODUCE);
	assert_true(res.inherit_tried);
	assert_int_equal(res.inherit_rc, 0);
	assert_int_equal(res.inherited.src_domid, 3);
	assert_true(res.inherited.copied >= 2);
	sm_result_clear(&res);
	dom0 = guest(0);
	dom0.privileged = true;
	assert_int_equal(store_read(st, H, NULL, &dom0,
				    "/local/domain/4/data/k", &v, &vl),
			 0);
	assert_memory_equal(v, "kept", 4);
	/* introduced again: no second copy */
	o.seq++;
	assert_int_equal(sm_entry_introduce(&o, 4, 1, 2004, true, true, 100,
					    &buf, &len),
			 0);
	apply(st, buf, len, &res);
	assert_false(res.inherit_tried);
	sm_result_clear(&res);
	o.seq++;
	assert_int_equal(sm_entry_resume(&o, 3, &buf, &len), 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, 0);
	assert_int_equal(res.dom_op, SM_DOM_RESUME);
	sm_result_clear(&res);
	assert_false(store_domain_get(st, H, 3)->suspending);
	o.seq++;
	assert_int_equal(sm_entry_resume(&o, 99, &buf, &len), 0);
	apply(st, buf, len, &res);
	assert_int_equal(res.result, -ENOENT);
	sm_result_clear(&res);
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_backup_header),
		cmocka_unit_test(test_ring_requests_once),
		cmocka_unit_test(test_introduce_inherits),
		cmocka_unit_test(test_quota_settings),
		cmocka_unit_test(test_newer_entry_stops),
		cmocka_unit_test(test_oversized_entries_refused),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
