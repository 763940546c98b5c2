/* What every program shares on its command line. */
#ifndef IMGPIPE_CLI_H
#define IMGPIPE_CLI_H

#include <stdint.h>

#define IMGPIPE_VERSION "0.1.0"

/* Sets progname from argv[0], installs signal handlers. */
void cli_init(int argc, char **argv);
void cli_version(void);
/* Parse a size option or exit with status 2. */
uint64_t cli_size(const char *opt, const char *arg);
/* Parse a decimal number from lo to hi or exit with status 2. */
long cli_number(const char *opt, const char *arg, long lo, long hi);
/* The entry of the NULL-terminated choices arg names, or exit with 2. */
const char *cli_choice(const char *opt, const char *arg,
    const char *const *choices);

#endif
