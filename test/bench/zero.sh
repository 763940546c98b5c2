#!/bin/sh
# Zero detection: why lib/zero.c is written the way it is.
. "$(dirname "$0")/common.sh"
build=${IMGPIPE_BUILD:-.}
bin=$build/test/bench/bin/zero_speed
printf '\n## zero detection over all-zero 4 KiB blocks (in cache)\n\n'
printf '| %-28s | %13s |\n|------------------------------|---------------|\n' method speed
"$bin"
