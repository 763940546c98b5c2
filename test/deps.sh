#!/bin/sh
# Install the build and test dependencies with apt-get, only if missing.
pkgs="zlib1g-dev libarchive-dev libxxhash-dev libxml2-dev nettle-dev libzstd-dev
pkg-config bats qemu-utils xxhash libarchive-tools e2fsprogs time clang cpio
libclang-rt-14-dev gcc libstdc++-12-dev make xz-utils zstd bzip2 man-db groff-base fdisk
xorriso parted udftools
liblz4-dev libbz2-dev liblzma-dev libicu-dev parallel"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "make deps: installing$missing" >&2
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may be running apt already (unattended upgrades): wait.
lock="-o DPkg::Lock::Timeout=600"
$SUDO apt-get $lock update -qq >/dev/null &&
	$SUDO apt-get $lock install -y -qq --no-install-recommends $missing >/dev/null
