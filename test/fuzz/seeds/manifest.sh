#!/bin/sh
# Seeds for fuzz_manifest: the three digest styles.
d=$1
printf 'SHA1(x.ovf)= %040d\nSHA256(disk1.vmdk) = %064d\n\nSHA512 (disk2.vhd) = %0128d\r\n' 0 0 0 > "$d/mf1"
printf 'SHA1 (a)= da39a3ee5e6b4b0d3255bfef95601890afd80709\n' > "$d/mf2"
