#!/bin/sh
# raw2vhd, raw2vhdx, raw2vdi and raw2ploop against qemu-img convert -O
# vpc / vhdx / vdi / parallels, every subformat, file -> file on tmpfs and
# on disk, then into and from pipes (qemu-img cannot): the writers' rows
# of make bench's one table (test/bench/table.sh, which says how rows are
# timed), for make bench-all or alone.  Goal: at most 0.8x qemu-img's
# time file -> file; peak RSS at most 64 MiB.
BENCH_JOBS=${BENCH_JOBS:-raw2vhd raw2vhdx raw2vdi raw2ploop} \
	exec sh "$(dirname "$0")/table.sh"
