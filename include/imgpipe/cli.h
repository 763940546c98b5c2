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

#endif
