/*
 * consensus/repl_seed.c: seeding an empty log directory with a snapshot,
 * for a restore from a backup (repl_seed() in repl.h). libraft 0.22 has
 * no call for "start from this state": raft_bootstrap writes a first
 * entry at index 1, and a state whose generations reach index N cannot
 * be followed by entries 2, 3, ... So the seed does through libraft's own
 * uv backend what installing a leader's snapshot does on a follower: the
 * term, then snapshot_put with no trailing entries (the backend then
 * appends from index + 1), on a private loop, before raft is started.
 */
#include "consensus/repl.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <raft.h>
#include <raft/uv.h>

#include "consensus/repl_int.h"

struct seed {
	struct raft_io_snapshot_put put;
	bool put_done, closed;
	int status;
};

static void seed_put_done(struct raft_io_snapshot_put *req, int status)
{
	struct seed *s = req->data;

	s->put_done = true;
	s->status = status;
}

static void seed_closed(struct raft_io *io)
{
	struct seed *s = io->data;

	s->closed = true;
}

/* Whether dir holds nothing but "." and "..". */
static bool dir_empty(const char *dir)
{
	struct dirent *e;
	DIR *dh = opendir(dir);
	bool empty = true;

	if (!dh)
		return false;
	while (empty && (e = readdir(dh)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			empty = false;
	closedir(dh);
	return empty;
}

int repl_seed(const char *dir, uint64_t id, const char *address,
	      const void *state, size_t len, uint64_t index, uint64_t term,
	      char *err, size_t err_len)
{
	struct raft_uv_transport transport;
	struct raft_configuration conf;
	struct raft_snapshot snap;
	struct raft_buffer bufs[2];
	struct raft_entry *entries = NULL;
	struct raft_snapshot *loaded = NULL;
	uint8_t hdr[SNAP_HDR];
	raft_term t0 = 0;
	raft_id vote = 0;
	raft_index start = 0;
	size_t n = 0;
	struct seed s = {0};
	struct repl *crc; /* for the checksum table of our snapshot header */
	struct raft_io io = {0};
	uv_loop_t loop;
	int rv;

	err[0] = '\0';
	if (!dir_empty(dir)) {
		snprintf(err, err_len, "%s is not an empty directory", dir);
		return -EEXIST;
	}
	if (!index || !term) {
		snprintf(err, err_len, "a snapshot at index %llu, term %llu "
			 "cannot start a log", (unsigned long long)index,
			 (unsigned long long)term);
		return -EINVAL;
	}
	crc = calloc(1, sizeof(*crc));
	if (!crc)
		return -ENOMEM;
	repl_snapfile_crc_init(crc->crc_table);
	repl_snapfile_envelope(crc, hdr, state, len);
	free(crc);
	if (!address)
		address = "local";

	uv_loop_init(&loop);
	repl_null_transport(&transport);
	io.data = &s;
	rv = raft_uv_init(&io, &loop, dir, &transport);
	if (rv) {
		snprintf(err, err_len, "%s", io.errmsg);
		uv_loop_close(&loop);
		return repl_from_raft(rv);
	}
	io.data = &s;
	rv = io.init(&io, id, address);
	if (!rv)
		rv = io.load(&io, &t0, &vote, &loaded, &start, &entries, &n);
	if (!rv && (t0 || loaded || n)) {
		/* dir_empty() said otherwise: leave it as it is */
		snprintf(err, err_len, "%s already holds a log", dir);
		rv = RAFT_CANTBOOTSTRAP;
		goto close;
	}
	if (!rv)
		rv = io.set_term(&io, term);
	if (rv)
		goto close;

	raft_configuration_init(&conf);
	rv = raft_configuration_add(&conf, id, address, RAFT_VOTER);
	if (rv) {
		raft_configuration_close(&conf);
		goto close;
	}
	memset(&snap, 0, sizeof(snap));
	snap.index = index;
	snap.term = term;
	snap.configuration = conf;
	snap.configuration_index = index;
	bufs[0].base = hdr;
	bufs[0].len = SNAP_HDR;
	bufs[1].base = (void *)state;
	bufs[1].len = len;
	snap.bufs = bufs;
	snap.n_bufs = 2;
	s.put.data = &s;
	rv = io.snapshot_put(&io, 0, &s.put, &snap, seed_put_done);
	if (!rv) {
		while (!s.put_done)
			uv_run(&loop, UV_RUN_ONCE);
		rv = s.status;
	}
	raft_configuration_close(&conf);

close:
	if (rv && !*err)
		snprintf(err, err_len, "%s", io.errmsg[0] ? io.errmsg
							   : raft_strerror(rv));
	io.close(&io, seed_closed);
	while (!s.closed)
		uv_run(&loop, UV_RUN_ONCE);
	raft_uv_close(&io);
	while (uv_run(&loop, UV_RUN_NOWAIT))
		;
	uv_loop_close(&loop);
	return repl_from_raft(rv) ? repl_from_raft(rv) : (rv ? -EIO : 0);
}
