/*
 * node/store_node.c: node records, path hashing, permission strings and
 * path validation (cxenstored 4.17 xs_lib.c and is_valid_nodename()).
 */
#include "node/store_int.h"
#include "wire/siphash.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

struct snode *snode_new(const char *path, size_t path_len, uint64_t hash,
			uint64_t generation, const struct store_perm *perms,
			uint32_t nperms, const void *value, size_t value_len,
			const void *children, size_t children_len)
{
	struct snode *n;
	char *p;

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
	((struct snode *)n)->refs++;
}

void snode_unref(const struct snode *n)
{
	struct snode *m = (struct snode *)n;

	if (m && --m->refs == 0)
		free(m);
}

/*
 * Paths are hashed with SipHash under a key drawn once per process:
 * guests choose paths, so a fixed hash would let them aim collisions at
 * the trie. The trie's shape is never observable, so replicas need not
 * share the key.
 */
static uint8_t path_key[16];
static bool path_keyed;

uint64_t path_hash(const char *path, size_t len)
{
	if (!path_keyed) {
		/* Without entropy from the kernel a fixed key still works. */
		if (getrandom(path_key, sizeof(path_key), GRND_NONBLOCK) !=
		    (ssize_t)sizeof(path_key))
			memset(path_key, 0x5a, sizeof(path_key));
		path_keyed = true;
	}
	return siphash64(path_key, path, len);
}

unsigned int store_perm_for(const struct store_caller *c,
			    const struct store_perm *perms, uint32_t n)
{
	const unsigned int all =
		STORE_PERM_READ | STORE_PERM_WRITE | STORE_PERM_OWNER;
	bool has_target = c->target != STORE_NO_TARGET;
	uint32_t i;

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
	size_t len = strlen(path);
	unsigned int domid;
	int local_off = 0;

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
