#!/bin/sh
# Install the build and test dependencies with apt-get, only if missing,
# and a real Linux kernel for uecsplit's tests if the machine has none.
pkgs="zlib1g-dev libdeflate-dev libarchive-dev libxxhash-dev libxml2-dev nettle-dev libzstd-dev libjansson-dev
pkg-config bats qemu-utils xxhash libarchive-tools e2fsprogs time clang cpio mandoc
bsdutils util-linux util-linux-extra file bash-completion
libclang-rt-14-dev gcc libstdc++-12-dev make xz-utils zstd bzip2 man-db groff-base fdisk
xorriso parted udftools strace xfsprogs
liblz4-dev libbz2-dev liblzma-dev libicu-dev parallel
libvhdi-utils python3-libvhdi libvmdk-utils python3-libvmdk libqcow-utils python3-libqcow"
SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
# A fresh machine may be running apt already (unattended upgrades): wait.
lock="-o DPkg::Lock::Timeout=600"
cache=${IMGPIPE_CACHE:-/var/tmp/imgpipe-cache}

install_missing() {
	missing=
	for p in $pkgs; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
			missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	echo "make deps: installing$missing" >&2
	$SUDO apt-get $lock update -qq >/dev/null &&
		$SUDO apt-get $lock install -y -qq --no-install-recommends $missing >/dev/null
}

have_kernel() {
	for k in /boot/vmlinuz-* "$cache"/vmlinuz-*; do
		[ -r "$k" ] && return 0
	done
	return 1
}

cloud_kernel_package() {
	apt-cache depends "linux-image-cloud-$(dpkg --print-architecture)" 2>/dev/null |
		awk '/Depends: linux-image-/ { print $2; exit }'
}

# Debian's cloud kernel package (about 27 MB), unpacked for /boot/vmlinuz-*
# alone, kept in $cache for the next run.
fetch_kernel() {
	pkg=$(cloud_kernel_package)
	[ -n "$pkg" ] || { $SUDO apt-get $lock update -qq >/dev/null; pkg=$(cloud_kernel_package); }
	[ -n "$pkg" ] || { echo "make deps: no cloud kernel package in apt's lists" >&2; return 1; }
	echo "make deps: fetching $pkg for its kernel (uecsplit's tests)" >&2
	tmp=$(mktemp -d) || return 1
	(cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null) &&
		dpkg-deb --fsys-tarfile "$tmp"/*.deb |
		tar -x -C "$tmp" --wildcards './boot/vmlinuz-*' &&
		mkdir -p "$cache" && mv "$tmp"/boot/vmlinuz-* "$cache/"
	rc=$?
	rm -rf "$tmp"
	return $rc
}

install_missing || exit 1
# apt's lists may name a kernel the mirror has replaced: update, try again
have_kernel || fetch_kernel ||
	{ $SUDO apt-get $lock update -qq >/dev/null && fetch_kernel; }
