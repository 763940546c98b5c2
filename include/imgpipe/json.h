/*
 * JSON output (--json) through jansson, so it is always valid JSON in
 * UTF-8.  Keys are kebab-case, as qemu-img's ("file-size").  Names taken
 * from archives or images are bytes: UTF-8 passes as it is, and a name
 * that is not UTF-8 is read as Latin-1 (each byte the character of its
 * value: "caf\xe9" is "café"), the charset old tar writers used.
 */
#ifndef IMGPIPE_JSON_H
#define IMGPIPE_JSON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

/* s as a JSON string (see above); NULL: null. */
json_t *jsonout_text(const char *s);
/* v as a JSON integer when has is set (and v fits), else null. */
json_t *jsonout_size(bool has, uint64_t v);
/* obj[key] = value, taking value's reference (NULL: out of memory). */
void jsonout_set(json_t *obj, const char *key, json_t *value);
/*
 * root on stdout, indented by 2, with a final newline; takes root's
 * reference.  0, or -1 with "stdout: write error" (EXIT_IO) recorded, or
 * "out of memory" when root is NULL.
 */
int jsonout_print(json_t *root);

#endif
