/* JSON output for --json and --output json. */
#ifndef IMGPIPE_JSON_H
#define IMGPIPE_JSON_H

#include <stdio.h>

/* s as a JSON string literal, escaped; NULL prints null. */
void json_string(FILE *f, const char *s);

#endif
