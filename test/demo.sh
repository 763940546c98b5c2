#!/bin/sh
# make demo: build a small sample disk and run it through the pipeline.
set -e
cd "$(dirname "$0")/.."
build=${IMGPIPE_BUILD:-.}
PATH="$(cd "$build" && pwd)/bin:$PATH"
d=demo
rm -rf "$d" && mkdir -p "$d/files"
cp -r include lib cmd man "$d/files/"
echo "1. a 64 MiB ext4 disk holding this source tree (mke2fs -d)"
mke2fs -q -t ext4 -d "$d/files" -F "$d/sample.raw" 64M
echo "2. raw2qcow2: raw to qcow2, through a pipe, then xz-compressed"
cat "$d/sample.raw" | raw2qcow2 | xz -T0 -1 > "$d/sample.qcow2.xz"
ls -l "$d/sample.raw" "$d/sample.qcow2.xz"
echo "3. img2raw: the compressed qcow2 back to raw, pipe to pipe, into imgsum"
a=$(xz -dc "$d/sample.qcow2.xz" | img2raw | imgsum)
b=$(imgsum < "$d/sample.raw")
echo "   imgsum of the round trip: $a"
echo "   imgsum of the original:   $b"
[ "${a%% *}" = "${b%% *}" ]
echo "4. imgsparse --map of the sample (first lines)"
imgsparse --map "$d/sample.raw" | head -n 5
echo "5. imginfo: what the compressed file really is, and is it safe?"
imginfo "$d/sample.qcow2.xz"
echo "demo ok: the disk survived raw -> qcow2 -> xz -> pipe -> raw unchanged"
