#!/bin/sh
# Seeds for fuzz_ovf: OVF 1.0 (VMware), 2.0 and VirtualBox-style descriptors.
d=$1
cat > "$d/vmware.ovf" <<'XML'
<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf">
  <References><File ovf:href="disk1.vmdk" ovf:id="file1" ovf:size="1000" ovf:chunkSize="500"/>
  <File ovf:href="disk2.vmdk.gz" ovf:id="file2" ovf:compression="gzip"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:capacity="4" ovf:capacityAllocationUnits="byte * 2^30" ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized" ovf:populatedSize="1"/>
    <Disk ovf:capacity="40" ovf:capacityAllocationUnits="byte * 10^6" ovf:diskId="vmdisk2" ovf:fileRef="file2"/>
    <Disk ovf:capacity="40" ovf:diskId="blank"/>
  </DiskSection>
  <VirtualSystem ovf:id="vm"><Info>x</Info><Name>vm</Name>
    <OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest"><Info>os</Info><Description>Linux</Description></OperatingSystemSection>
  </VirtualSystem>
</Envelope>
XML
cat > "$d/v2.ovf" <<'XML'
<o:Envelope xmlns:o="http://schemas.dmtf.org/ovf/envelope/2"><o:References><o:File o:href="a.img" o:id="f"/></o:References><o:DiskSection><o:Disk o:diskId="d" o:fileRef="f" o:capacity="3" o:capacityAllocationUnits="byte * 2^20"/></o:DiskSection><o:VirtualSystemCollection><o:VirtualSystem o:id="v"><o:OperatingSystemSection o:id="96" xmlns:vbox="http://www.virtualbox.org/ovf/machine"><vbox:OSType>Debian_64</vbox:OSType></o:OperatingSystemSection></o:VirtualSystem></o:VirtualSystemCollection></o:Envelope>
XML
# Two OperatingSystemSections, the first without an id: the second must
# not replace (and leak) the first's strings (found by this fuzzer).
cat > "$d/two-os.ovf" <<'XML'
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1" xmlns:vmw="http://www.vmware.com/schema/ovf"><References><File ovf:href="d.vmdk" ovf:id="f"/></References><DiskSection><Disk ovf:capacity="1" ovf:diskId="d" ovf:fileRef="f"/></DiskSection><VirtualSystem ovf:id="vm"><OperatingSystemSection><Description>first</Description></OperatingSystemSection><OperatingSystemSection ovf:id="101" vmw:osType="otherLinux64Guest"><Description>second</Description></OperatingSystemSection></VirtualSystem></Envelope>
XML
