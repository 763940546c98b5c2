/*
 * UUIDs for the writers: parsed from the command line, or derived from a
 * name (RFC 4122 version 5, SHA-1), so that the same input gives the same
 * output on every run.  Bytes are in RFC 4122 order (the text's, left to
 * right) unless said otherwise.
 */
#ifndef IMGPIPE_UUID_H
#define IMGPIPE_UUID_H

#include <stdbool.h>

#define UUID_LEN 16
#define UUID_TEXT_LEN 36	/* xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx */

/* "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx", either case; false if not. */
bool uuid_parse(const char *text, unsigned char out[UUID_LEN]);
/* --uuid ARG parsed into out (returned), or a usage error (exit 2). */
const unsigned char *uuid_option(const char *arg,
    unsigned char out[UUID_LEN]);
/* The version 5 UUID of name in imgpipe's namespace. */
void uuid_from_name(const char *name, unsigned char out[UUID_LEN]);
/*
 * The same UUID with its first three fields little-endian: how Microsoft
 * GUIDs (VHDX) and VirtualBox's RTUUID (VDI) lie on disk.
 */
void uuid_to_guid(const unsigned char in[UUID_LEN],
    unsigned char out[UUID_LEN]);

#endif
