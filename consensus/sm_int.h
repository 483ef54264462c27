/*
 * consensus/sm_int.h: private to the files of the sm module: the entry
 * schema versions that sm_entry.c (writing entries) and sm_apply.c
 * (refusing entries too new for it) must agree on.
 */
#ifndef XSR_CONSENSUS_SM_INT_H
#define XSR_CONSENSUS_SM_INT_H

/* The newest schema this replica applies; entries name the oldest that
 * can apply them (wire/entry.proto). */
#define ENTRY_VERSION	    4
#define ENTRY_VERSION_QUOTA 2
#define ENTRY_VERSION_EXISTENCE_ONLY 3
#define ENTRY_VERSION_INHERIT 4 /* OpResume, OpIntroduce.inherit */

#endif
