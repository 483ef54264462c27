/*
 * ring/ring.h: guests' xenstore rings, and the hypervisor services that
 * come with them.
 *
 * Three parts, each usable alone:
 *
 *  - Ring I/O (ring_io_*): moving bytes through one shared page
 *    (struct xenstore_domain_interface, Xen's docs/misc/xenstore-ring.txt).
 *    The page is hostile: the guest may change any byte at any time. We
 *    keep our own copies of the two indexes we own (req_cons, rsp_prod) and
 *    only publish them; the two indexes the guest owns are read once per
 *    call, validated (prod - cons <= 1024), and the bytes are copied out
 *    once before anything looks at them. Nothing here trusts the page.
 *
 *  - Backends (ring_backend_*): map a domain's page, bind and signal its
 *    event channel, learn about dying domains. Two implementations behind
 *    one interface:
 *      "xen"      libxenevtchn, libxengnttab (grant GNTTAB_RESERVED_XENSTORE)
 *                 with libxenforeignmemory as fallback (the gfn given in
 *                 INTRODUCE), libxenctrl for domain states, and dom0's own
 *                 ring from /proc/xen/xsd_kva and /proc/xen/xsd_port.
 *      "sim:DIR"  the file model of ../shared/reference/xsshim.c, so that a
 *                 test process can play guest N exactly as a guest kernel
 *                 would, against this daemon or against Xen's own daemons
 *                 under the shim (see ring/sim.c for the files).
 *    A backend is only ever chosen explicitly (--ring-backend).
 *
 *  - The journal (ring_journal_*): a small memory-mapped file per ring
 *    connection holding what a restarted daemon needs to carry on exactly
 *    where the dead one stopped: the request bytes consumed from the ring
 *    but not yet answered, the reply being copied into the ring, and our
 *    two indexes. Stores to a shared file mapping outlive the process
 *    (kill -9 included), so keeping it costs a memcpy, never a write(2).
 *
 * Errors are negative errno values. Nothing here logs: backends return a
 * message with ring_backend_open's err buffer only.
 */
#ifndef XSR_RING_RING_H
#define XSR_RING_RING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <xen/io/xs_wire.h>

#define XSR_RING_PAGE_SIZE 4096u
/* Local port of VIRQ_DOM_EXC in the sim backend (as xsshim.c). */
#define XSR_RING_SIM_VIRQ_PORT 1u
/* dom0's remote port in the sim backend (xsshim.c's xsd_port). */
#define XSR_RING_SIM_DOM0_PORT 7u

/* ---- Ring I/O ---------------------------------------------------------- */

/*
 * Our end of one ring. req_cons and rsp_prod are ours: the page's copies
 * are only ever written from these, never read back.
 */
struct ring_io {
	struct xenstore_domain_interface *page;
	uint32_t req_cons;
	uint32_t rsp_prod;
};

/* Adopt page with our indexes at the given values (published at once). */
void ring_io_init(struct ring_io *io, void *page, uint32_t req_cons,
		  uint32_t rsp_prod);

/*
 * Copy up to max request bytes from the ring into buf without consuming
 * them. *n is the number copied (0: nothing pending). -EIO if the guest's
 * req_prod is inconsistent with our req_cons (more than a ring apart).
 */
int ring_io_peek(struct ring_io *io, void *buf, size_t max, size_t *n);
/* Consume n bytes (at most what the last peek returned) and publish. */
void ring_io_consume(struct ring_io *io, size_t n);
/* Is there a request byte we have not consumed? (A hint: peek decides.) */
bool ring_io_readable(const struct ring_io *io);

/*
 * Copy up to len bytes of data into the response ring, without telling
 * the guest yet (ring_io_publish). *n is the number written (0: the ring
 * is full). -EIO if the guest's rsp_cons is inconsistent with our
 * rsp_prod.
 */
int ring_io_put(struct ring_io *io, const void *data, size_t len, size_t *n);
/* Publish what ring_io_put wrote. */
void ring_io_publish(struct ring_io *io);
/* Free space in the response ring (0 if full or inconsistent). */
size_t ring_io_space(const struct ring_io *io);

/* All four indexes to 0 (INTRODUCE and reconnection do this). */
void ring_io_reset(struct ring_io *io);

/* The page's connection, error and server_features fields. */
uint32_t ring_io_connection(const struct ring_io *io);
void ring_io_set_connection(struct ring_io *io, uint32_t v);
void ring_io_set_error(struct ring_io *io, uint32_t err);
uint32_t ring_io_error(const struct ring_io *io);
void ring_io_set_features(struct ring_io *io, uint32_t features);

/* ---- Backends ------------------------------------------------------------ */

/* What the hypervisor says about a domain. */
struct ring_dominfo {
	bool exists;
	bool shutdown; /* shut down or crashed: @releaseDomain once */
	bool dying;    /* being destroyed: forget it */
};

struct ring_backend;

/*
 * Open a backend from its spec: "xen" or "sim:DIR". err receives a
 * one-line reason on failure. Returns 0 or a negative errno.
 */
int ring_backend_open(const char *spec, struct ring_backend **out, char *err,
		      size_t errlen);
void ring_backend_close(struct ring_backend *b);
const char *ring_backend_name(const struct ring_backend *b);

/* The fd to poll for readability: event channel notifications. */
int ring_backend_fd(const struct ring_backend *b);
/*
 * The next pending local port, or -EAGAIN if none. The port stays masked
 * until ring_backend_unmask(); handle, then unmask.
 */
int ring_backend_pending(struct ring_backend *b, uint32_t *port);
void ring_backend_unmask(struct ring_backend *b, uint32_t port);

/* Bind VIRQ_DOM_EXC: domain state changes arrive on *port. */
int ring_backend_bind_virq(struct ring_backend *b, uint32_t *port);
/* Bind to (domid, remote_port): the local port in *local. */
int ring_backend_bind(struct ring_backend *b, uint32_t domid,
		      uint32_t remote_port, uint32_t *local);
void ring_backend_unbind(struct ring_backend *b, uint32_t local);
void ring_backend_notify(struct ring_backend *b, uint32_t local);

/* Map domid's store page (gfn as given in INTRODUCE). */
int ring_backend_map(struct ring_backend *b, uint32_t domid, uint64_t gfn,
		     void **page);
void ring_backend_unmap(struct ring_backend *b, uint32_t domid, void *page);

/*
 * dom0's own kernel ring, if this host has one (xsd_kva, xsd_port):
 * -ENOENT if not. The page is unmapped with ring_backend_unmap(b, 0, ...).
 */
int ring_backend_dom0(struct ring_backend *b, void **page,
		      uint32_t *remote_port);

/* Ask the hypervisor about domid. */
int ring_backend_dominfo(struct ring_backend *b, uint32_t domid,
			 struct ring_dominfo *info);

/* ---- Journal ------------------------------------------------------------- */

#define XSR_RING_JOURNAL_MAGIC 0x314c4e524a525358ull /* "XSRJRNL1" */
#define XSR_RING_JOURNAL_MSG_MAX (16u + 4096u)
#define XSR_RING_JOURNAL_IN_BYTES (64u * 1024u)

/*
 * The file's layout (native endianness: it never leaves this host).
 * Stream positions count bytes since the ring was last reset; requests
 * are numbered in the same way (seq), so that the log can recognise one
 * it has already applied when a restarted daemon reads it again.
 */
struct ring_journal {
	uint64_t magic;
	uint64_t ring_id;     /* which introduction of the domain this is */
	char boot_id[40];     /* the host's boot: pages do not survive one */
	uint64_t in_base;     /* position of the oldest unanswered request */
	uint64_t in_base_seq; /* its seq (requests count from 1) */
	uint64_t in_end;      /* bytes consumed from the request ring */
	uint64_t out_pos;     /* bytes produced into the response ring */
	/* The message being copied into the response ring (msg_len 0: none) */
	uint64_t msg_start;   /* out_pos at its first byte */
	uint64_t msg_req_end; /* a reply: its request's end position */
	uint64_t msg_req_seq; /* a reply: its request's seq */
	uint32_t msg_len;
	uint32_t msg_is_reply;
	uint8_t msg[XSR_RING_JOURNAL_MSG_MAX];
	/* request bytes [in_base, in_end), byte p at in[p % IN_BYTES] */
	uint8_t in[XSR_RING_JOURNAL_IN_BYTES];
};

/*
 * Map the journal at path, creating it if needed. *fresh is set when it
 * did not exist, belonged to another ring_id or was written before the
 * host last booted (then it is zeroed and stamped with ring_id). Unmap
 * with ring_journal_close().
 */
int ring_journal_open(const char *path, uint64_t ring_id,
		      struct ring_journal **out, bool *fresh);
void ring_journal_close(struct ring_journal *j);
/* Zero it for a reset ring (new ring_id). */
void ring_journal_reset(struct ring_journal *j, uint64_t ring_id);

/* Bytes of unanswered requests held. */
static inline size_t ring_journal_held(const struct ring_journal *j)
{
	return (size_t)(j->in_end - j->in_base);
}
/* Append n consumed bytes (caller checked the room); in_end advances. */
void ring_journal_append(struct ring_journal *j, const void *p, size_t n);
/* Copy held bytes [pos, pos + n) out. */
void ring_journal_copy(const struct ring_journal *j, uint64_t pos, void *p,
		       size_t n);

#endif
