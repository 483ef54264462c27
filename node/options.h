/*
 * node/options.h: parsing the command line and the config file into
 * struct config (node/daemon.h).
 */
#ifndef XSR_NODE_OPTIONS_H
#define XSR_NODE_OPTIONS_H

#include <stdio.h>

#include "node/daemon.h"

void options_defaults(struct config *cfg);
/*
 * Parse argv (and the --config file it names). Returns 0, 1 if help was
 * asked for, 2 if the version was, or -EINVAL after printing what is
 * wrong to stderr.
 */
int options_parse(struct config *cfg, int argc, char **argv);
void options_usage(FILE *f);

#endif
