/*
 * node/store/store_node.c: node records, path hashing, permission strings and
 * path validation (cxenstored 4.17 xs_lib.c and is_valid_nodename()).
 */
#include "node/store/store_int.h"
#include "wire/siphash.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* For assert(): the arguments of snode_new() describe a well-formed record. */
static bool snode_args_ok(const char *path, size_t path_len,
			  const struct store_perm *perms, uint32_t nperms,
			  const void *value, size_t value_len,
			  const char *children, size_t children_len)
{
	if (!path || path_len > UINT32_MAX || memchr(path, 0, path_len))
		return false;
	if ((nperms && !perms) || (value_len && !value) ||
	    (children_len && !children) || value_len > UINT32_MAX ||
	    children_len > UINT32_MAX)
		return false;
	/* the child list is NUL-terminated names */
	return children_len == 0 || children[children_len - 1] == '\0';
}

/* For assert(): n is a live record. */
static bool snode_live(const struct snode *n)
{
	return n && n->refs > 0 && snode_path(n)[n->path_len] == '\0';
}

/*
 * This routine assumes path is path_len bytes without a NUL, and children
 * (if any) ends with one. The record copies everything it is given.
 */
struct snode *snode_new(const char *path, size_t path_len, uint64_t hash,
			uint64_t generation, const struct store_perm *perms,
			uint32_t nperms, const void *value, size_t value_len,
			const void *children, size_t children_len)
{
	struct snode *n;
	char *p;

	assert(snode_args_ok(path, path_len, perms, nperms, value, value_len,
			     children, children_len));
	n = malloc(sizeof(*n) + nperms * sizeof(n->perms[0]) + path_len + 1 +
		   value_len + children_len);
	if (!n)
		return NULL;
	n->refs = 1;
	n->nperms = nperms;
	n->path_len = (uint32_t)path_len;
	n->value_len = (uint32_t)value_len;
	n->children_len = (uint32_t)children_len;
	n->pad = 0;
	n->hash = hash;
	n->generation = generation;
	if (nperms)
		memcpy(n->perms, perms, nperms * sizeof(n->perms[0]));
	p = (char *)(n->perms + nperms);
	memcpy(p, path, path_len);
	p[path_len] = '\0';
	p += path_len + 1;
	if (value_len)
		memcpy(p, value, value_len);
	p += value_len;
	if (children_len)
		memcpy(p, children, children_len);
	return n;
}

void snode_ref(const struct snode *n)
{
	assert(snode_live(n));
	assert(n->refs < UINT32_MAX);
	((struct snode *)n)->refs++;
}

void snode_unref(const struct snode *n)
{
	struct snode *m = (struct snode *)n;

	assert(!m || snode_live(m));
	if (m && --m->refs == 0)
		free(m);
}

/*
 * Paths are hashed with SipHash under the key the store's creator gave
 * (store.h: STORE_HASH_KEY_LEN): guests choose paths, so the key keeps
 * them from aiming collisions at one slot. The store draws nothing itself
 * (no system call, no global state): it is a function of its inputs.
 */
const uint8_t store_hash_key_default[STORE_HASH_KEY_LEN] = {
	'x', 'e', 'n', 's', 't', 'o', 'r', 'e',
	'd', '-', 'r', 'a', 'f', 't', '/', '1',
};

struct store *store_new_keyed(const uint8_t key[STORE_HASH_KEY_LEN])
{
	struct store *st;

	assert(key);
	st = store_new();
	if (!st)
		return NULL;
	memcpy(st->hash_key, key, STORE_HASH_KEY_LEN);
	st->keyed = true;
	return st;
}

const uint8_t *store_key_of(const struct store *st)
{
	assert(st);
	return st->keyed ? st->hash_key : store_hash_key_default;
}

const uint8_t *store_hash_key(const struct store *st)
{
	return store_key_of(st);
}

void host_bind_key(const struct store *st, struct host *h)
{
	assert(st && h);
	h->hash_key = store_key_of(st);
}

uint64_t host_hash(const struct host *h, const char *path, size_t len)
{
	assert(h && path);
	assert(!memchr(path, 0, len));
	assert(h->hash_key); /* host_bind_key() ran */
	return siphash64(h->hash_key, path, len);
}

unsigned int store_perm_for(const struct store_caller *c,
			    const struct store_perm *perms, uint32_t n)
{
	const unsigned int all =
		STORE_PERM_READ | STORE_PERM_WRITE | STORE_PERM_OWNER;
	bool has_target = c->target != STORE_NO_TARGET;
	uint32_t i;

	assert(c && (perms || n == 0));
	/* Owners and tools get it all (perm_for_conn()). */
	if (c->privileged || n == 0 || perms[0].domid == c->domid ||
	    (has_target && perms[0].domid == c->target))
		return all;
	for (i = 1; i < n; i++)
		if (!perms[i].ignore &&
		    (perms[i].domid == c->domid ||
		     (has_target && perms[i].domid == c->target)))
			return perms[i].access &
			       (STORE_PERM_READ | STORE_PERM_WRITE);
	return perms[0].access & (STORE_PERM_READ | STORE_PERM_WRITE);
}

int store_perm_parse(const char *s, struct store_perm *out)
{
	char *end;
	long id;

	assert(s && out);
	memset(out, 0, sizeof(*out));
	switch (*s) {
	case 'r':
		out->access = STORE_PERM_READ;
		break;
	case 'w':
		out->access = STORE_PERM_WRITE;
		break;
	case 'b':
		out->access = STORE_PERM_READ | STORE_PERM_WRITE;
		break;
	case 'n':
		out->access = 0;
		break;
	default:
		return -EINVAL;
	}
	s++;
	/* As xs_strings_to_perms(): strtol base 0, stored as unsigned int. */
	id = strtol(s, &end, 0);
	if (*end || !*s)
		return -EINVAL;
	out->domid = (uint32_t)id;
	return 0;
}

int store_perm_format(const struct store_perm *p, char *buf)
{
	static const char letters[4] = {'n', 'r', 'w', 'b'};

	assert(p && buf);
	return sprintf(buf, "%c%i", letters[p->access & 3], (int)p->domid);
}

static bool valid_chars(const char *path)
{
	return strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz"
			    "0123456789-/_@") == strlen(path);
}

bool store_path_valid(const char *path, uint32_t path_max)
{
	size_t len;
	unsigned int domid;
	int local_off = 0;

	assert(path);
	len = strlen(path);
	if (path[0] != '/')
		return false;
	if (path[len - 1] == '/' && len != 1)
		return false;
	if (strstr(path, "//"))
		return false;
	/* The same sscanf as Xen 4.17, so "-5" counts as a domid too. */
	if (sscanf(path, "/local/domain/%5u/%n", &domid, &local_off) != 1)
		local_off = 0;
	if (len > (size_t)local_off + path_max)
		return false;
	return valid_chars(path);
}
