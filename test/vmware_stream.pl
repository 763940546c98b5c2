#!/usr/bin/perl
# vmware_stream.pl IN OUT [raw] [type4] [unknown]: re-lay qemu-img's
# streamOptimized VMDK the way VMware ovftool writes it (see
# test/bats/img2raw_vmdk.bats).  raw: grains as raw deflate; type4: a lone
# type-4 marker after the first grain table, as vSphere writes
# sporadically; unknown: a marker of type 9 with two sectors after the
# first grain.
use strict;
my ($in, $out, @opt) = @ARGV;
my %opt = map { $_ => 1 } @opt;
my $raw = $opt{raw};
open(my $fh, '<:raw', $in) or die; local $/; my $d = <$fh>; close $fh;
my ($cap, $grain, $doff, $dsz, $ngte, $rgd, $gd, $over) =
    unpack('x12 Q< Q< Q< Q< V Q< Q< Q<', $d);
my $ngts = int((int(($cap + $grain - 1) / $grain) + $ngte - 1) / $ngte);
my $body = substr($d, 0, $over * 512);
substr($body, $rgd * 512, ($over - $rgd) * 512) = "\0" x (($over - $rgd) * 512);
my $desc = join("\n", '# Disk DescriptorFile', 'version=1',
    'encoding="UTF-8"', 'CID=7e5b80a7', 'parentCID=ffffffff',
    'isNativeSnapshot="no"', 'createType="streamOptimized"', '',
    '# Extent description', "RDONLY $cap SPARSE \"disk1.vmdk\"", '',
    '# The Disk Data Base', '#DDB', '', 'ddb.adapterType = "lsilogic"',
    'ddb.longContentID = "0123456789abcdef0123456789abcdef"',
    'ddb.toolsInstallType = "4"', 'ddb.toolsVersion = "10346"',
    'ddb.virtualHWVersion = "7"', '');
substr($body, $doff * 512, $dsz * 512) = $desc . "\0" x ($dsz * 512 - length $desc);
my (%gte, $off);
for ($off = $over * 512; ; ) {
	my ($lba, $size) = unpack('Q< V', substr($d, $off, 12));
	last unless $size;
	my $c = substr($d, $off + 12, $size);
	$off += int((12 + $size + 511) / 512) * 512;
	if ($raw) {
		require Compress::Zlib;
		my $plain = Compress::Zlib::uncompress($c);
		my ($z) = Compress::Raw::Zlib::Deflate->new(-WindowBits => -15,
		    -AppendOutput => 1);
		$c = '';
		$z->deflate($plain, $c);
		$z->flush($c);
	}
	$gte{$lba / $grain} = length($body) / 512;
	my $g = pack('Q< V', $lba, length $c) . $c;
	$body .= $g . "\0" x ((512 - length($g) % 512) % 512);
	if ($opt{unknown}) {
		$body .= pack('Q< V V', 2, 0, 9) . "\0" x 496 . "\xa5" x 1024;
		delete $opt{unknown};
	}
}
my $gtsec = int(($ngte * 4 + 511) / 512);
my @newgd;
for my $g (0 .. $ngts - 1) {
	my @e = map { $gte{$g * $ngte + $_} // 0 } 0 .. $ngte - 1;
	if (!grep { $_ } @e) { push @newgd, 0; next; }
	$body .= pack('Q< V V', $gtsec, 0, 1) . "\0" x 496;
	push @newgd, length($body) / 512;
	my $gt = pack('V*', @e);
	$body .= $gt . "\0" x ($gtsec * 512 - length $gt);
	if ($opt{type4}) {
		$body .= pack('Q< V V', 0, 0, 4) . "\0" x 496;
		delete $opt{type4};
	}
}
my $gdsec = int(($ngts * 4 + 511) / 512);
$body .= pack('Q< V V', $gdsec, 0, 2) . "\0" x 496;
my $gdat = length($body) / 512;
my $gdraw = pack('V*', @newgd);
$body .= $gdraw . "\0" x ($gdsec * 512 - length $gdraw);
my $footer = substr($body, 0, 512);
substr($footer, 48, 16) = pack('Q< Q<', 0, $gdat);
substr($body, 48, 16) = pack('Q<', 0) . "\xff" x 8;
$body .= pack('Q< V V', 1, 0, 3) . "\0" x 496 . $footer;
$body .= "\0" x 512;
open($fh, '>:raw', $out) or die; print $fh $body; close $fh;
