/*
 * node/migrate.h: moving a domain's store state between hosts or domids
 * (`xsadm domain migrate|adopt|list`, CONTROL domain ...): checks, a probe
 * of the source host's member, then one MoveDomain log entry
 * (node/migrate.c).
 */
#ifndef XSR_NODE_MIGRATE_H
#define XSR_NODE_MIGRATE_H

#include "node/conn.h"

struct daemon;

/* CONTROL domain migrate|adopt|list ... */
enum conn_verdict migrate_control(struct daemon *d, struct conn *c,
				  struct conn_req *r, const char **argv,
				  unsigned int argc);

#endif
