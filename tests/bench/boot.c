/*
 * tests/bench/boot.c: the boot workload: the trace of what libxl writes to
 * create one PV domain (an op), replayed by script.c; and its cleanup.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "tests/bench/bench_int.h"
#include "wire/xs_msg.h"

/* What libxl 4.17 writes to create PV domain `d` (tools/libs/light:
 * libxl__domain_make, libxl__build_post, libxl__device_console_add,
 * libxl__device_add_async + libxl__device_generic_add, and the hotplug
 * handshake of libxl__wait_device_connection), in its order. */

struct dev {
	const char *kind;
	unsigned devid;
	const char *fe, *be, *lx;
};

static void tr_mknod(struct trace *t, const char *path, const char *p0, const char *p1)
{
	trace_add(t, WIRE_MKDIR, STEP_TX, false, 1, path);
	if (p1)
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, path, p0, p1);
	else
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 2, path, p0);
}

/* dir/key = value for each pair of kv (NULL-terminated). */
static void tr_writev(struct trace *t, const char *dir, const char *const *kv,
		      const char *p0, const char *p1)
{
	char path[BENCH_PATH_MAX];

	for (; kv[0]; kv += 2) {
		snprintf(path, sizeof(path), "%s/%s", dir, kv[0]);
		trace_write(t, STEP_TX, path, kv[1]);
		if (p0)
			trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, path, p0, p1);
	}
}

/* libxl__device_generic_add, inside the caller's transaction. */
static void tr_device(struct trace *t, const struct dev *dv, unsigned d,
		      const char *const *bents, const char *const *fents,
		      const char *const *ro_fents)
{
	char path[BENCH_PATH_MAX], dp[16], rp[16];
	bool console0 = !strcmp(dv->kind, "console");

	snprintf(dp, sizeof(dp), "n%u", d);  /* frontend_perms[0] */
	snprintf(rp, sizeof(rp), "r%u", d);  /* ro/backend perms[1] */
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dv->lx);
	snprintf(path, sizeof(path), "%s/frontend", dv->lx);
	trace_write(t, STEP_TX, path, dv->fe);
	snprintf(path, sizeof(path), "%s/backend", dv->lx);
	trace_write(t, STEP_TX, path, dv->be);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dv->fe);
	trace_add(t, WIRE_MKDIR, STEP_TX, false, 1, dv->fe);
	if (console0)
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, dv->fe, "n0", rp);
	else
		trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, dv->fe, dp, "r0");
	snprintf(path, sizeof(path), "%s/backend", dv->fe);
	trace_write(t, STEP_TX, path, dv->be);
	tr_writev(t, dv->fe, fents, dp, "r0");
	if (ro_fents)
		tr_writev(t, dv->fe, ro_fents, "n0", rp);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dv->be);
	trace_add(t, WIRE_MKDIR, STEP_TX, false, 1, dv->be);
	trace_add(t, WIRE_SET_PERMS, STEP_TX, false, 3, dv->be, "n0", rp);
	snprintf(path, sizeof(path), "%s/frontend", dv->be);
	trace_write(t, STEP_TX, path, dv->fe);
	tr_writev(t, dv->be, bents, NULL, NULL);
	tr_writev(t, dv->lx, bents, NULL, NULL);
}

/* The backend driver moves to InitWait, the hotplug script runs and says
 * so; libxl watches both (libxl__wait_device_connection, hotplug). */
static void tr_hotplug(struct trace *t, const struct dev *dv, const char *reads)
{
	char st[BENCH_PATH_MAX], hs[BENCH_PATH_MAX], rd[BENCH_PATH_MAX];

	snprintf(st, sizeof(st), "%s/state", dv->be);
	snprintf(hs, sizeof(hs), "%s/hotplug-status", dv->be);
	snprintf(rd, sizeof(rd), "%s/%s", dv->be, reads);
	trace_add(t, WIRE_WATCH, 0, false, 2, st, "bench-state");
	trace_add(t, WIRE_READ, 0, false, 1, st);
	trace_write(t, 0, st, "2");                 /* the backend driver */
	trace_add(t, WIRE_READ, 0, false, 1, st);
	trace_add(t, WIRE_UNWATCH, 0, false, 2, st, "bench-state");
	trace_add(t, WIRE_WATCH, 0, false, 2, hs, "bench-hotplug");
	trace_add(t, WIRE_READ, 0, false, 1, rd); /* the hotplug script */
	trace_write(t, 0, hs, "connected");
	trace_add(t, WIRE_READ, 0, false, 1, hs);
	trace_add(t, WIRE_UNWATCH, 0, false, 2, hs, "bench-hotplug");
}

static void boot_paths(unsigned d, char *dom, char *vm, char *lx, size_t n)
{
	snprintf(dom, n, "/local/domain/%u", d);
	snprintf(vm, n, "/vm/00000000-0000-4000-8000-%012x", d);
	snprintf(lx, n, "/libxl/%u", d);
}

void boot_trace(struct bench *b, struct trace *t, unsigned i)
{
	unsigned d = b->domid_base + i, k;
	char dom[64], vm[64], lx[64], p[BENCH_PATH_MAX], q[BENCH_PATH_MAX];
	char ds[16], rp[16], np[16], name[32], mac[2][32];
	char fe[5][BENCH_PATH_MAX], be[5][BENCH_PATH_MAX], lxd[5][BENCH_PATH_MAX];
	static const char *const sub_ro[] = {"cpu", "memory", "device", "control", NULL};
	static const char *const sub_rw[] = {
		"control/shutdown", "control/feature-poweroff",
		"control/feature-reboot", "control/feature-suspend",
		"control/sysrq", "data", "drivers", "feature", "attr", "error", NULL};
	struct dev dv[5];

	boot_paths(d, dom, vm, lx, sizeof(dom));
	snprintf(ds, sizeof(ds), "%u", d);
	snprintf(rp, sizeof(rp), "r%u", d);
	snprintf(np, sizeof(np), "n%u", d);
	snprintf(name, sizeof(name), "bench-guest-%u", d);
	trace_reset(t);

	/* libxl__xs_get_dompath; libxl_name_to_domid reads every domain's name */
	trace_add(t, WIRE_GET_DOMAIN_PATH, 0, false, 1, ds);
	trace_add(t, WIRE_READ, STEP_OK_ENOENT, false, 1, "/local/domain/0/name");
	for (k = 0; k < i; k++) {
		snprintf(p, sizeof(p), "/local/domain/%u/name", b->domid_base + k);
		trace_add(t, WIRE_READ, STEP_OK_ENOENT, false, 1, p);
	}

	/* libxl__domain_make */
	trace_txn(t, true);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, dom);
	tr_mknod(t, dom, "n0", rp);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, vm);
	tr_mknod(t, vm, "n0", rp);
	trace_add(t, WIRE_RM, STEP_TX | STEP_OK_ENOENT, false, 1, lx);
	tr_mknod(t, lx, "n0", NULL);
	snprintf(p, sizeof(p), "%s/device", lx);
	tr_mknod(t, p, "n0", NULL);
	snprintf(p, sizeof(p), "%s/vm", dom);
	trace_write(t, STEP_TX, p, vm);
	snprintf(p, sizeof(p), "%s/name", dom);     /* libxl__domain_rename */
	trace_write(t, STEP_TX, p, name);
	snprintf(p, sizeof(p), "%s/name", vm);
	trace_write(t, STEP_TX, p, name);
	for (k = 0; sub_ro[k]; k++) {
		snprintf(p, sizeof(p), "%s/%s", dom, sub_ro[k]);
		tr_mknod(t, p, "n0", rp);
		if (!strcmp(sub_ro[k], "device")) {
			snprintf(p, sizeof(p), "%s/device/suspend/event-channel", dom);
			tr_mknod(t, p, np, NULL);
		}
	}
	for (k = 0; sub_rw[k]; k++) {
		snprintf(p, sizeof(p), "%s/%s", dom, sub_rw[k]);
		tr_mknod(t, p, np, NULL);
	}
	snprintf(p, sizeof(p), "%s/uuid", vm);
	trace_write(t, STEP_TX, p, vm + 4);
	snprintf(p, sizeof(p), "%s/name", vm);
	trace_write(t, STEP_TX, p, name);
	snprintf(p, sizeof(p), "%s/control/platform-feature-multiprocessor-suspend", dom);
	trace_write(t, STEP_TX, p, "1");
	snprintf(p, sizeof(p), "%s/control/platform-feature-xs_reset_watches", dom);
	trace_write(t, STEP_TX, p, "1");
	snprintf(p, sizeof(p), "%s/type", lx);
	trace_write(t, STEP_TX, p, "pv");
	trace_txn(t, false);

	/* store_libxl_entry */
	snprintf(p, sizeof(p), "%s/dm-version", lx);
	trace_write(t, 0, p, "qemu_xen");

	/* libxl__build_post (INTRODUCE left out: no real guest) */
	snprintf(p, sizeof(p), "%s/vm", dom);
	trace_add(t, WIRE_READ, 0, false, 1, p);
	{
		const char *ents[] = {
			"memory/static-max", "524288", "memory/target", "524288",
			"memory/videoram", "-1", "domid", ds, "store/port", "1",
			"store/ring-ref", "1044476", "cpu/0/availability", "online",
			"cpu/1/availability", "online", NULL};
		const char *vments[] = {
			"image/ostype", "linux", "image/kernel", "/boot/vmlinuz-6.1.0-13-amd64",
			"start_time", "1700000000.00", "image/ramdisk",
			"/boot/initrd.img-6.1.0-13-amd64", "image/cmdline",
			"root=/dev/xvda1 ro console=hvc0", NULL};

		trace_txn(t, true);
		tr_writev(t, dom, ents, NULL, NULL);
		tr_writev(t, vm, vments, NULL, NULL);
		trace_txn(t, false);
	}

	/* devices: console 0, vbd xvda/xvdb, vif 0/1 */
	dv[0] = (struct dev){.kind = "console", .devid = 0};
	dv[1] = (struct dev){.kind = "vbd", .devid = 51712};
	dv[2] = (struct dev){.kind = "vbd", .devid = 51728};
	dv[3] = (struct dev){.kind = "vif", .devid = 0};
	dv[4] = (struct dev){.kind = "vif", .devid = 1};
	for (k = 0; k < 5; k++) {
		if (k == 0)
			snprintf(fe[k], sizeof(fe[k]), "%s/console", dom);
		else
			snprintf(fe[k], sizeof(fe[k]), "%s/device/%s/%u", dom, dv[k].kind,
				 dv[k].devid);
		snprintf(be[k], sizeof(be[k]), "/local/domain/0/backend/%s/%u/%u",
			 dv[k].kind, d, dv[k].devid);
		snprintf(lxd[k], sizeof(lxd[k]), "%s/device/%s/%u", lx, dv[k].kind,
			 dv[k].devid);
		dv[k].fe = fe[k];
		dv[k].be = be[k];
		dv[k].lx = lxd[k];
	}
	{
		const char *bents[] = {"frontend-id", ds, "online", "1", "state", "1",
				       "protocol", "vt100", NULL};
		const char *fents[] = {"backend-id", "0", NULL};
		const char *ro[] = {"limit", "1048576", "type", "xenconsoled",
				    "output", "pty", "tty", "", "port", "2",
				    "ring-ref", "1044475", NULL};

		trace_txn(t, true);
		tr_device(t, &dv[0], d, bents, fents, ro);
		trace_txn(t, false);
	}
	for (k = 1; k <= 2; k++) {
		char params[64], vdev[16];
		const char *bents[] = {
			"params", params, "script", "/etc/xen/scripts/block",
			"frontend-id", ds, "online", "1", "removable", "0",
			"bootable", "1", "state", "1", "dev", k == 1 ? "xvda" : "xvdb",
			"type", "phy", "mode", "w", "device-type", "disk",
			"discard-enable", "1", NULL};
		const char *fents[] = {
			"backend-id", "0", "state", "1", "virtual-device", vdev,
			"device-type", "disk", "trusted", "1", "protocol",
			"x86_64-abi", NULL};

		snprintf(params, sizeof(params), "/dev/vg0/guest%u-disk%u", d, k - 1);
		snprintf(vdev, sizeof(vdev), "%u", dv[k].devid);
		trace_txn(t, true);
		trace_add(t, WIRE_READ, STEP_TX | STEP_OK_ENOENT, false, 1, dv[k].lx);
		tr_device(t, &dv[k], d, bents, fents, NULL);
		trace_txn(t, false);
	}
	for (k = 3; k <= 4; k++) {
		char handle[8];
		const char *bents[] = {
			"frontend-id", ds, "online", "1", "state", "1",
			"script", "/etc/xen/scripts/vif-bridge", "mac", mac[k - 3],
			"bridge", "xenbr0", "handle", handle, "type", "vif",
			"hotplug-status", "", NULL};
		const char *fents[] = {"backend-id", "0", "state", "1", "handle", handle,
				       "mac", mac[k - 3], "trusted", "1", NULL};
		const char *ro[] = {"mtu", "1500", NULL};

		snprintf(handle, sizeof(handle), "%u", k - 3);
		snprintf(mac[k - 3], sizeof(mac[k - 3]), "00:16:3e:%02x:%02x:%02x",
			 d >> 8 & 0xff, d & 0xff, k - 3);
		trace_txn(t, true);
		trace_add(t, WIRE_READ, STEP_TX | STEP_OK_ENOENT, false, 1, dv[k].lx);
		tr_device(t, &dv[k], d, bents, fents, ro);
		trace_txn(t, false);
	}
	for (k = 1; k <= 4; k++)
		tr_hotplug(t, &dv[k], k <= 2 ? "params" : "bridge");
	/* the block script also records the device it set up */
	for (k = 1; k <= 2; k++) {
		snprintf(q, sizeof(q), "%s/physical-device", dv[k].be);
		trace_write(t, 0, q, k == 1 ? "fe:1" : "fe:2");
	}
}

void boot_cleanup(struct bench *b)
{
	char dom[64], vm[64], lx[64], p[BENCH_PATH_MAX];
	static const char *const kinds[] = {"console", "vbd", "vif"};
	unsigned i, k;

	if (b->keep)
		return;
	for (i = 0; i < b->domains; i++) {
		unsigned d = b->domid_base + i;

		boot_paths(d, dom, vm, lx, sizeof(dom));
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, dom);
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, vm);
		trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, lx);
		for (k = 0; k < 3; k++) {
			snprintf(p, sizeof(p), "/local/domain/0/backend/%s/%u", kinds[k], d);
			trace_add(&b->batch, WIRE_RM, STEP_OK_ENOENT, false, 1, p);
		}
	}
	batch_run(b, "cleanup", false);
}

void boot_setup(struct bench *b)
{
	b->ops_limit = b->domains;
}
