# ovacreate: OVAs made here are read back by ovaextract, GNU tar, bsdtar,
# qemu-img (check, compare), vmdkinfo and sha256sum/sha1sum; the
# descriptor is checked element by element against what DSP0243 requires
# (the DMTF schema is not carried here: see ovf_schema_valid below).
load helpers

VMDK_SO=http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized

setup_file() {
	F=$BATS_FILE_TMPDIR
	make_pattern "$F/raw1" 4194304
	make_pattern "$F/raw2" 3000000	# not a multiple of 512: rounded up
	qemu-img convert -q -f raw -O qcow2 "$F/raw1" "$F/web.qcow2"
	qemu-img convert -q -f raw -O vmdk "$F/raw2" "$F/data.vmdk"	# monolithicSparse
	# qemu-img rounds the size up to whole sectors: its raw is the oracle
	qemu-img convert -q -O raw "$F/data.vmdk" "$F/raw2.vmdk"
	export SOURCE_DATE_EPOCH=1700000000
}

setup() {
	F=$BATS_FILE_TMPDIR
	cd "$T"
	export SOURCE_DATE_EPOCH=1700000000
}

# ovf_required OVF [DISK_SIZES...]: every element and attribute DSP0243
# (1.1 and 2.0) requires of what ovacreate writes, ids unique and
# references resolved; the virtual sizes given are the disks' capacities.
ovf_required() {
	python3 - "$@" <<-'PY'
	import sys, xml.etree.ElementTree as ET
	path, sizes = sys.argv[1], [int(s) for s in sys.argv[2:]]
	root = ET.parse(path).getroot()
	ns = root.tag[1:].split('}')[0]
	assert ns in ('http://schemas.dmtf.org/ovf/envelope/1',
	              'http://schemas.dmtf.org/ovf/envelope/2'), root.tag
	assert root.tag == '{%s}Envelope' % ns, root.tag
	O = lambda t: '{%s}%s' % (ns, t)
	A = lambda e, a: e.get(O(a))
	kids = [c.tag for c in root]
	assert kids == [O('References'), O('DiskSection'), O('NetworkSection'),
	                O('VirtualSystem')], kids
	files = {}
	for f in root.find(O('References')).findall(O('File')):
	    assert A(f, 'id') not in files, 'File ids unique'
	    assert A(f, 'href') and '/' not in A(f, 'href'), A(f, 'href')
	    files[A(f, 'id')] = (A(f, 'href'), int(A(f, 'size')))
	ds = root.find(O('DiskSection'))
	assert ds[0].tag == O('Info') and ds[0].text
	units = {'byte': 1, 'byte * 2^10': 1 << 10, 'byte * 2^20': 1 << 20,
	         'byte * 2^30': 1 << 30}
	disks = []
	for d in ds.findall(O('Disk')):
	    assert A(d, 'fileRef') in files, A(d, 'fileRef')
	    assert A(d, 'format').endswith('vmdk.html#streamOptimized')
	    cap = int(A(d, 'capacity')) * units[A(d, 'capacityAllocationUnits') or 'byte']
	    assert 0 <= int(A(d, 'populatedSize')) <= cap
	    disks.append((A(d, 'diskId'), cap))
	assert len(set(i for i, _ in disks)) == len(disks), 'diskIds unique'
	assert [c for _, c in disks] == sizes, (disks, sizes)
	nets = root.find(O('NetworkSection'))
	assert nets[0].tag == O('Info') and nets[0].text
	names = [A(n, 'name') for n in nets.findall(O('Network'))]
	assert names and all(names)
	vs = root.find(O('VirtualSystem'))
	assert A(vs, 'id') and vs[0].tag == O('Info') and vs[0].text
	osec = vs.find(O('OperatingSystemSection'))
	assert int(A(osec, 'id')) >= 0 and osec[0].tag == O('Info')
	hw = vs.find(O('VirtualHardwareSection'))
	assert hw[0].tag == O('Info') and hw[1].tag == O('System'), hw[1].tag
	items = [c for c in hw if c.tag in (O('Item'), O('StorageItem'),
	                                    O('EthernetPortItem'))]
	if ns.endswith('/2'):   # the schema's order: Items, then the others
	    order = [c.tag for c in items]
	    assert order == sorted(order, key=[O('Item'), O('EthernetPortItem'),
	                                       O('StorageItem')].index), order
	def settings(e):
	    d = {c.tag.split('}')[1]: c.text for c in e}
	    # a CIM class's properties in its schema's (alphabetical) order
	    assert list(d) == sorted(d), list(d)
	    return d
	system = settings(hw[1])
	assert system['VirtualSystemType'].startswith('vmx-')
	ids, byid = set(), {}
	for it in items:
	    s = settings(it)
	    assert s['InstanceID'] not in ids, 'InstanceIDs unique'
	    ids.add(s['InstanceID'])
	    byid[s['InstanceID']] = s
	types = [int(s['ResourceType']) for s in byid.values()]
	assert types.count(3) == 1 and types.count(4) == 1, types
	assert types.count(10) == 1 and types.count(17) == len(disks), types
	diskids = dict(disks)
	for s in byid.values():
	    if s['ResourceType'] == '17':
	        assert s['HostResource'].startswith('ovf:/disk/')
	        assert s['HostResource'][10:] in diskids, s['HostResource']
	        assert byid[s['Parent']]['ResourceType'] in ('5', '6')
	    if s['ResourceType'] == '10':
	        assert s['Connection'] in names
	print(len(files), len(disks), len(items), 'ok')
	PY
}

# Each member's digest in the manifest checks out with sha256sum/sha1sum.
manifest_ok() {
	local dir=$1 mf=$2 alg=$3
	sed -E "s/^$alg\((.*)\)= ([0-9a-f]+)\$/\2  \1/" "$dir/$mf" > "$dir/sums"
	[ "$(wc -l < "$dir/sums")" -eq "$(($(ls "$dir" | wc -l) - 2))" ]
	(cd "$dir" && "$(echo "$alg" | tr A-Z a-z)sum" --quiet -c sums)
}

# The members of an OVA on one line.
members() {
	local m
	m=$(tar tf "$1") || return
	printf '%s ' $m
}

@test "one disk from a file into a file: ovf, mf, vmdk in that order; ovaextract lists, verifies and gives the disk back" {
	run ovacreate -o web.ova "$F/web.qcow2"
	[ "$status" -eq 0 ]
	output_is "web.ovf web.mf web.vmdk " members web.ova
	run ovaextract -t web.ova
	[ "$status" -eq 0 ]
	[[ "$output" == *"web.vmdk"*"vmdk streamOptimized"*" 4194304 "* ]]
	ovaextract -o out.vmdk web.ova
	(set -o pipefail; img2raw out.vmdk | cmp - "$F/raw1")
	want=$(imgsum < "$F/web.qcow2")
	got=$(set -o pipefail; ovaextract web.ova | imgsum)
	[ "$got" = "$want" ]
}

@test "two disks into a pipe: GNU tar and bsdtar list and extract them, the manifest checks, qemu-img and vmdkinfo read each disk" {
	(set -o pipefail; ovacreate --name app "$F/web.qcow2" "$F/data.vmdk" | cat > app.ova)
	output_is "app.ovf app.mf web.vmdk data.vmdk " members app.ova
	run bsdtar tf app.ova
	[ "$status" -eq 0 ]
	[ "$(echo "$output" | tr '\n' ' ')" = "app.ovf app.mf web.vmdk data.vmdk " ]
	mkdir gnu bsd
	tar xf app.ova -C gnu
	bsdtar xf app.ova -C bsd
	diff -r gnu bsd
	manifest_ok gnu app.mf SHA256
	qemu-img check -q gnu/web.vmdk
	qemu-img check -q gnu/data.vmdk
	qemu-img compare -q -f raw "$F/raw1" -F vmdk gnu/web.vmdk
	qemu-img compare -q -f raw "$F/raw2.vmdk" -F vmdk gnu/data.vmdk
	run vmdkinfo gnu/data.vmdk
	[ "$status" -eq 0 ]
	[[ "$output" == *"Stream optimized"* ]]
	(set -o pipefail; ovaextract -d 2 app.ova | img2raw | cmp - "$F/raw2.vmdk")
	(set -o pipefail; ovaextract -d 1 app.ova | img2raw | cmp - "$F/raw1")
}

@test "from a pipe: img2raw disk | ovacreate --name web - into a file and into a pipe, the same bytes" {
	(set -o pipefail; img2raw "$F/web.qcow2" | ovacreate --name web -o pf.ova -)
	(set -o pipefail; img2raw "$F/web.qcow2" | ovacreate --name web - | cat > pp.ova)
	cmp pf.ova pp.ova
	output_is "web.ovf web.mf web-disk1.vmdk " members pf.ova
	(set -o pipefail; ovaextract pf.ova | img2raw | cmp - "$F/raw1")
	run ovaextract -t pp.ova
	[ "$status" -eq 0 ]
	[[ "$output" == *"web-disk1.vmdk"*" 4194304 "* ]]
}

@test "file and pipe agree: a disk from a file or a pipe, into a file or a pipe, gives one archive" {
	# from stdin the member is named after the machine: a-disk1.vmdk
	cp "$F/web.qcow2" a-disk1.qcow2
	ovacreate --name a -o ff.ova a-disk1.qcow2
	(set -o pipefail; ovacreate --name a a-disk1.qcow2 | cat > fp.ova)
	ovacreate --name a -o pf.ova - < <(cat a-disk1.qcow2)
	cmp ff.ova fp.ova
	cmp ff.ova pf.ova
	output_is "a.ovf a.mf a-disk1.vmdk " members ff.ova
}

@test "the descriptor has every element and attribute DSP0243 requires, OVF 1 and 2, SCSI and IDE" {
	ovacreate --name app -o one.ova "$F/web.qcow2" "$F/data.vmdk"
	ovacreate --name app --ovf 2 -o two.ova "$F/web.qcow2" "$F/data.vmdk"
	ovacreate --name app --adapter-type ide -o ide.ova "$F/web.qcow2" "$F/data.vmdk"
	for v in one two ide; do
		mkdir $v
		tar xf $v.ova -C $v
		run ovf_required $v/app.ovf 4194304 3000320
		[ "$status" -eq 0 ] || { echo "$v: $output"; false; }
		[ "$output" = "2 2 6 ok" ]
	done
	grep -q 'xmlns="http://schemas.dmtf.org/ovf/envelope/1"' one/app.ovf
	grep -q 'xmlns="http://schemas.dmtf.org/ovf/envelope/2"' two/app.ovf
	grep -q '<sasd:HostResource>ovf:/disk/vmdisk2</sasd:HostResource>' two/app.ovf
	grep -q '<rasd:ResourceType>5</rasd:ResourceType>' ide/app.ovf
	grep -q "ovf:format=\"$VMDK_SO\"" one/app.ovf
}

@test "the descriptor says what --os, --cpus, --memory and --nic chose; a name is escaped by libxml2" {
	ovacreate --name '<a&b "c">' --os ubuntu --cpus 4 --memory 2G --nic vmxnet3 \
		-o o.ova "$F/web.qcow2"
	mkdir o
	tar xf o.ova -C o
	ovf=o/_a_b__c__.ovf	# the name's stem, cleaned
	output_is '<a&b "c">' xmllint --xpath 'string(//*[local-name()="Name"])' "$ovf"
	output_is 94 xmllint --xpath \
		'string(//*[local-name()="OperatingSystemSection"]/@*[local-name()="id"])' "$ovf"
	grep -q '<rasd:VirtualQuantity>4</rasd:VirtualQuantity>' "$ovf"
	grep -q '<rasd:VirtualQuantity>2048</rasd:VirtualQuantity>' "$ovf"
	grep -q '<rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>' "$ovf"
	run ovf_required "$ovf" 4194304
	[ "$status" -eq 0 ]
}

@test "--manifest sha1 for old importers: SHA1 lines sha1sum checks; ovaextract verifies them" {
	ovacreate --manifest sha1 -o s.ova "$F/web.qcow2" "$F/data.vmdk"
	mkdir s
	tar xf s.ova -C s
	grep -q '^SHA1(web.ovf)= [0-9a-f]\{40\}$' s/web.mf
	manifest_ok s web.mf SHA1
	ovaextract -x -C x s.ova
	cmp x/web.vmdk s/web.vmdk
}

@test "a disk that cannot be read is refused before the archive starts: -o never appears, a pipe gets no byte" {
	printf 'QFI\373xxxx' > bad.qcow2
	expect_reject 1 qcow2 '^header is truncated$' ovacreate -o bad.ova "$F/web.qcow2" bad.qcow2
	[ ! -e bad.ova ]
	st=0
	ovacreate "$F/web.qcow2" bad.qcow2 > out.ova 2> /dev/null || st=$?
	[ "$st" -eq 1 ]
	[ ! -s out.ova ]
	expect_reject -i bad.qcow2 1 qcow2 '^header is truncated$' ovacreate -o p.ova -
	[ ! -e p.ova ]
	expect_reject 3 - 'No such file or directory$' ovacreate -o m.ova "$F/web.qcow2" missing.img
	[ ! -e m.ova ]
	truncate -s 0 empty.img
	expect_reject 1 - '^the disk is empty' ovacreate -o e.ova empty.img
	[ ! -e e.ova ]
}

@test "a streamOptimized VMDK file goes in as it is, after a whole read; a damaged one is refused before the archive starts" {
	qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$F/raw1" so.vmdk
	ovacreate -o so.ova so.vmdk "$F/web.qcow2"
	output_is "so.ovf so.mf so.vmdk web.vmdk " members so.ova
	mkdir so
	tar xf so.ova -C so
	cmp so/so.vmdk so.vmdk
	manifest_ok so so.mf SHA256
	run ovaextract -t so.ova
	[ "$status" -eq 0 ]
	[[ "$output" == *"so.vmdk"*"vmdk streamOptimized"*" 4194304 "* ]]
	# a grain that does not inflate: found by the read, nothing written
	cp so.vmdk bad.vmdk
	printf '\377\377\377\377\377\377\377\377' |
		dd of=bad.vmdk bs=1 seek=$((65536 + 40)) conv=notrunc status=none
	expect_reject 1 vmdk 'does not inflate' ovacreate -o bad.ova bad.vmdk
	[ ! -e bad.ova ]
}

@test "a streamOptimized VMDK that changes between its probe and its read is refused (3), the message naming it once" {
	qemu-img convert -q -f raw -O vmdk -o subformat=streamOptimized "$F/raw1" so.vmdk
	# Disk 1 comes from the pipe, read only once every file disk has been
	# probed: when 1 MiB has gone into the pipe, so.vmdk was probed as a
	# stream VMDK; it becomes a raw disk before ovacreate reads it whole.
	st=0
	{ head -c 1048576 "$F/raw1" && cp "$F/raw2" so.vmdk &&
		tail -c +1048577 "$F/raw1"; } |
		ovacreate -o c.ova - so.vmdk 2> err || st=$?
	cat err
	[ "$st" -eq 3 ]
	[ "$(cat err)" = "ovacreate: so.vmdk: changed while it was read" ]
	[ ! -e c.ova ]
}

@test "usage errors: two '-', an unknown --os, a control character in --name, too many IDE disks, no disk" {
	run ovacreate - -
	[ "$status" -eq 2 ]
	run ovacreate --os plan9 "$F/web.qcow2"
	[ "$status" -eq 2 ]
	run ovacreate --name $'a\tb' "$F/web.qcow2"
	[ "$status" -eq 2 ]
	run ovacreate --adapter-type ide "$F/web.qcow2" "$F/web.qcow2" "$F/web.qcow2" \
		"$F/web.qcow2" "$F/web.qcow2"
	[ "$status" -eq 2 ]
	run ovacreate
	[ "$status" -eq 2 ]
}

@test "member names are cleaned: no path, no leading dot, unique whatever the case" {
	mkdir -p 'sub dir'
	cp "$F/web.qcow2" '..x y$.qcow2'
	cp "$F/web.qcow2" 'sub dir/WEB.qcow2'
	ovacreate -o n.ova '..x y$.qcow2' "$F/web.qcow2" 'sub dir/WEB.qcow2'
	output_is "_.x_y_.ovf _.x_y_.mf _.x_y_.vmdk web.vmdk WEB-2.vmdk " members n.ova
	mkdir n
	tar xf n.ova -C n
	[ "$(ls n | wc -l)" -eq 5 ]
}

@test "the archive is reproducible with SOURCE_DATE_EPOCH, and ustar" {
	ovacreate -o r1.ova "$F/web.qcow2"
	ovacreate -o r2.ova "$F/web.qcow2"
	cmp r1.ova r2.ova
	run tar tvf r1.ova
	[ "$status" -eq 0 ]
	[[ "${lines[0]}" == *" 2023-11-14 "*" web.ovf" ]]
	# ustar magic in the first header: no pax or GNU headers for small members
	output_is ustar dd if=r1.ova bs=1 skip=257 count=5 status=none
}

# optional: DMTF's envelope schema is not carried in the repository (see
# the man page); with OVF_SCHEMA_DIR naming a folder that holds
# ovf1/dsp8023_1.1.1.xsd and ovf2/dsp8023_2.0.1.xsd with their imports,
# the descriptors are validated with xmllint too.
@test "the descriptors validate against DMTF's OVF envelope schema (optional: OVF_SCHEMA_DIR)" {
	if [ -z "${OVF_SCHEMA_DIR:-}" ]; then
		skip "optional: OVF_SCHEMA_DIR not set (DMTF's schema is not in the repository)"
	fi
	ovacreate --name app -o one.ova "$F/web.qcow2" "$F/data.vmdk"
	ovacreate --name app --ovf 2 -o two.ova "$F/web.qcow2" "$F/data.vmdk"
	mkdir one two
	tar xf one.ova -C one
	tar xf two.ova -C two
	xmllint --noout --nonet --schema "$OVF_SCHEMA_DIR/ovf1/dsp8023_1.1.1.xsd" one/app.ovf
	xmllint --noout --nonet --schema "$OVF_SCHEMA_DIR/ovf2/dsp8023_2.0.1.xsd" two/app.ovf
}
