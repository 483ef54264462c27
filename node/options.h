/*
 * node/options.h: parsing the command line and the config file into
 * struct config (node/daemon.h).
 */
#ifndef XSR_NODE_OPTIONS_H
#define XSR_NODE_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/socket.h>

#include "node/daemon.h"

void options_defaults(struct config *cfg);
/*
 * Parse argv and the config file: the one --config names, else the
 * packaged default (options_default_config()) if it exists. Returns 0, 1
 * if help was asked for, 2 if the version was, or -EINVAL after printing
 * to stderr everything that is wrong, each bad value of the file with its
 * FILE:LINE and key.
 */
int options_parse(struct config *cfg, int argc, char **argv);
void options_usage(FILE *f);
/*
 * A Raft or peer address, "IPv4:PORT" or "[IPv6]:PORT" with a port from 1
 * to 65535; its socket address in *sa unless sa is NULL.
 */
bool options_address(const char *s, struct sockaddr_storage *sa);
/* What a build was given (CMake: XSR_DEFAULT_CONFIG, "" for none, and
 * XSR_DEFAULT_DATA_DIR, /var/lib/xenstored if not set). */
const char *options_default_config(void);
const char *options_default_data_dir(void);

#endif
