#include <stdlib.h>
#include <string.h>

#include "imgpipe/err.h"
#include "imgpipe/json.h"

/* Latin-1 to UTF-8: each byte at most two bytes. */
static json_t *latin1_text(const char *s)
{
	size_t n = strlen(s), i, o = 0;
	unsigned char c;
	char *utf8 = malloc(2 * n + 1);
	json_t *j;

	if (utf8 == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (c < 0x80) {
			utf8[o++] = (char)c;
		} else {
			utf8[o++] = (char)(0xc0 | c >> 6);
			utf8[o++] = (char)(0x80 | (c & 0x3f));
		}
	}
	j = json_stringn(utf8, o);
	free(utf8);
	return j;
}

json_t *jsonout_text(const char *s)
{
	json_t *j;

	if (s == NULL)
		return json_null();
	j = json_stringn(s, strlen(s));	/* NULL unless valid UTF-8 */
	return j != NULL ? j : latin1_text(s);
}

json_t *jsonout_size(bool has, uint64_t v)
{
	if (!has || v > (uint64_t)INT64_MAX)
		return json_null();
	return json_integer((json_int_t)v);
}

void jsonout_set(json_t *obj, const char *key, json_t *value)
{
	if (obj != NULL && value != NULL)
		json_object_set_new(obj, key, value);
	else if (value != NULL)
		json_decref(value);
}

int jsonout_print(json_t *root)
{
	int rc;

	if (root == NULL)
		return fail(EXIT_IO, "out of memory");
	rc = json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (rc < 0 || putchar('\n') == EOF || fflush(stdout) != 0 ||
	    ferror(stdout))
		return fail_io("stdout", "write error");
	return 0;
}
