/*
 * The OVF descriptor of an appliance (include/imgpipe/ovacreate.h), with
 * libxml2's writer: the DMTF envelope (DSP0243, schema DSP8023 1.1 or 2.0)
 * as VMware's ovftool writes it: References, DiskSection, NetworkSection,
 * one VirtualSystem with its OperatingSystemSection and
 * VirtualHardwareSection.  The CIM settings in each Item are written in
 * the order the CIM schemas' sequences give, which is alphabetical.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/xmlstring.h>
#include <libxml/xmlwriter.h>

#include "imgpipe/err.h"
#include "imgpipe/ovacreate.h"

#define OVF1_NS "http://schemas.dmtf.org/ovf/envelope/1"
#define OVF2_NS "http://schemas.dmtf.org/ovf/envelope/2"
#define CIM_NS "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/"
#define RASD_NS CIM_NS "CIM_ResourceAllocationSettingData"
#define VSSD_NS CIM_NS "CIM_VirtualSystemSettingData"
#define SASD_NS CIM_NS "CIM_StorageAllocationSettingData"
#define EPASD_NS CIM_NS "CIM_EthernetPortAllocationSettingData"
#define VMW_NS "http://www.vmware.com/schema/ovf"

#define NETWORK_NAME "VM Network"	/* VMware's default network */

/* CIM ResourceType values (CIM_ResourceAllocationSettingData). */
enum {
	RT_PROCESSOR = 3,
	RT_MEMORY = 4,
	RT_IDE = 5,
	RT_SCSI = 6,
	RT_ETHERNET = 10,
	RT_DISK = 17,
};

/* A SCSI bus holds 16 ids, one of them (7) the controller's own. */
#define SCSI_UNITS 15
#define SCSI_CONTROLLERS 4
#define IDE_UNITS 2		/* master and slave */
#define IDE_CONTROLLERS 2	/* primary and secondary channel */

/*
 * CIM_OperatingSystem.OSType values and VMware's guest ids; a vmw:osType
 * only where VMware has one that names no release.
 */
const struct ovf_os ovf_os_names[] = {
	{ "other", 1, "Other", "otherGuest" },
	{ "other64", 102, "Other 64-Bit", "otherGuest64" },
	{ "linux", 101, "Linux 64-Bit", "otherLinux64Guest" },
	{ "linux32", 36, "Linux", "otherLinuxGuest" },
	{ "ubuntu", 94, "Ubuntu 64-Bit", "ubuntu64Guest" },
	{ "debian", 96, "Debian 64-Bit", NULL },
	{ "rhel", 80, "RedHat Enterprise Linux 64-Bit", NULL },
	{ "sles", 85, "SLES 64-Bit", NULL },
	{ "freebsd", 78, "FreeBSD 64-Bit", "freebsd64Guest" },
	{ NULL, 0, NULL, NULL },
};

const struct ovf_os *ovf_os_by_name(const char *name)
{
	const struct ovf_os *os;

	for (os = ovf_os_names; os->name != NULL; os++)
		if (strcmp(os->name, name) == 0)
			return os;
	return NULL;
}

bool ovf_text_ok(const char *s)
{
	const unsigned char *p;

	if (s == NULL || *s == '\0' || xmlCheckUTF8((const xmlChar *)s) == 0)
		return false;
	for (p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return false;
	return true;
}

size_t ovf_disks_max(enum ovf_controller c)
{
	return c == OVF_IDE ? IDE_UNITS * IDE_CONTROLLERS :
	    SCSI_UNITS * SCSI_CONTROLLERS;
}

/* ---- writing, with the first failure remembered ---- */

struct xw {
	xmlTextWriterPtr w;
	bool bad;
};

static void start(struct xw *x, const char *name)
{
	if (xmlTextWriterStartElement(x->w, BAD_CAST name) < 0)
		x->bad = true;
}

static void end(struct xw *x)
{
	if (xmlTextWriterEndElement(x->w) < 0)
		x->bad = true;
}

static void attr(struct xw *x, const char *name, const char *value)
{
	if (xmlTextWriterWriteAttribute(x->w, BAD_CAST name, BAD_CAST value) <
	    0)
		x->bad = true;
}

static void attr_u64(struct xw *x, const char *name, uint64_t n)
{
	char buf[24];

	snprintf(buf, sizeof buf, "%llu", (unsigned long long)n);
	attr(x, name, buf);
}

static void text_element(struct xw *x, const char *name, const char *text)
{
	if (xmlTextWriterWriteElement(x->w, BAD_CAST name, BAD_CAST text) < 0)
		x->bad = true;
}

/* ---- CIM settings: an Item, a StorageItem, the System ---- */

#define SETTINGS_MAX 12

struct settings {
	struct { const char *key; char *value; } s[SETTINGS_MAX];
	int n;
	bool bad;
};

static void set(struct settings *st, const char *key, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void set(struct settings *st, const char *key, const char *fmt, ...)
{
	va_list ap;
	char *v;

	va_start(ap, fmt);
	if (st->n == SETTINGS_MAX || vasprintf(&v, fmt, ap) < 0) {
		st->bad = true;
		va_end(ap);
		return;
	}
	va_end(ap);
	st->s[st->n].key = key;
	st->s[st->n].value = v;
	st->n++;
}

static int by_key(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* <elem><prefix:Key>value</prefix:Key>...</elem>, keys sorted. */
static void write_settings(struct xw *x, const char *elem, const char *prefix,
    struct settings *st)
{
	char name[64];
	int i;

	if (st->bad)
		x->bad = true;
	qsort(st->s, st->n, sizeof st->s[0], by_key);
	start(x, elem);
	for (i = 0; i < st->n; i++) {
		snprintf(name, sizeof name, "%s:%s", prefix, st->s[i].key);
		text_element(x, name, st->s[i].value);
		free(st->s[i].value);
	}
	end(x);
	st->n = 0;
}

/* ---- the sections ---- */

static void write_references(struct xw *x, const struct ovf_appliance *a)
{
	char id[32];
	size_t i;

	start(x, "References");
	for (i = 0; i < a->ndisks; i++) {
		snprintf(id, sizeof id, "file%zu", i + 1);
		start(x, "File");
		attr(x, "ovf:href", a->disks[i].href);
		attr(x, "ovf:id", id);
		attr_u64(x, "ovf:size", a->disks[i].file_size);
		end(x);
	}
	end(x);
}

/* The capacity in the largest unit that holds it exactly, as ovftool. */
static const char *capacity_units(uint64_t bytes, uint64_t *n)
{
	static const struct { unsigned shift; const char *units; } u[] = {
		{ 30, "byte * 2^30" }, { 20, "byte * 2^20" },
		{ 10, "byte * 2^10" },
	};
	size_t i;

	for (i = 0; i < sizeof u / sizeof u[0]; i++)
		if (bytes != 0 && bytes % (1ull << u[i].shift) == 0) {
			*n = bytes >> u[i].shift;
			return u[i].units;
		}
	*n = bytes;
	return "byte";
}

static void write_disk_section(struct xw *x, const struct ovf_appliance *a)
{
	const char *units;
	char id[32];
	uint64_t n;
	size_t i;

	start(x, "DiskSection");
	text_element(x, "Info", "Virtual disk information");
	for (i = 0; i < a->ndisks; i++) {
		units = capacity_units(a->disks[i].capacity, &n);
		start(x, "Disk");
		attr_u64(x, "ovf:capacity", n);
		attr(x, "ovf:capacityAllocationUnits", units);
		snprintf(id, sizeof id, "vmdisk%zu", i + 1);
		attr(x, "ovf:diskId", id);
		snprintf(id, sizeof id, "file%zu", i + 1);
		attr(x, "ovf:fileRef", id);
		attr(x, "ovf:format", OVF_VMDK_STREAM_URI);
		attr_u64(x, "ovf:populatedSize", a->disks[i].populated);
		end(x);
	}
	end(x);
}

static void write_network_section(struct xw *x)
{
	start(x, "NetworkSection");
	text_element(x, "Info", "The list of logical networks");
	start(x, "Network");
	attr(x, "ovf:name", NETWORK_NAME);
	text_element(x, "Description", "The " NETWORK_NAME " network");
	end(x);
	end(x);
}

static void write_os_section(struct xw *x, const struct ovf_appliance *a)
{
	start(x, "OperatingSystemSection");
	attr_u64(x, "ovf:id", a->os.cim_id);
	if (a->os.vmw != NULL)
		attr(x, "vmw:osType", a->os.vmw);
	text_element(x, "Info", "The kind of installed guest operating system");
	if (a->os.desc != NULL)
		text_element(x, "Description", a->os.desc);
	end(x);
}

static void write_system(struct xw *x, const struct ovf_appliance *a)
{
	struct settings st = { .n = 0 };

	set(&st, "ElementName", "Virtual Hardware Family");
	set(&st, "InstanceID", "0");
	set(&st, "VirtualSystemIdentifier", "%s", a->name);
	set(&st, "VirtualSystemType", "vmx-%02u", a->hw_version);
	write_settings(x, "System", "vssd", &st);
}

static void write_cpu_memory(struct xw *x, const struct ovf_appliance *a,
    unsigned *id)
{
	struct settings st = { .n = 0 };

	set(&st, "AllocationUnits", "hertz * 10^6");
	set(&st, "Description", "Number of Virtual CPUs");
	set(&st, "ElementName", "%u virtual CPU(s)", a->cpus);
	set(&st, "InstanceID", "%u", (*id)++);
	set(&st, "ResourceType", "%d", RT_PROCESSOR);
	set(&st, "VirtualQuantity", "%u", a->cpus);
	write_settings(x, "Item", "rasd", &st);
	set(&st, "AllocationUnits", "byte * 2^20");
	set(&st, "Description", "Memory Size");
	set(&st, "ElementName", "%lluMB of memory",
	    (unsigned long long)a->memory_mib);
	set(&st, "InstanceID", "%u", (*id)++);
	set(&st, "ResourceType", "%d", RT_MEMORY);
	set(&st, "VirtualQuantity", "%llu", (unsigned long long)a->memory_mib);
	write_settings(x, "Item", "rasd", &st);
}

static size_t units_per_controller(const struct ovf_appliance *a)
{
	return a->controller == OVF_IDE ? IDE_UNITS : SCSI_UNITS;
}

/* The controllers the disks need, from InstanceID first on. */
static void write_controllers(struct xw *x, const struct ovf_appliance *a,
    unsigned first, size_t n)
{
	struct settings st = { .n = 0 };
	bool ide = a->controller == OVF_IDE;
	size_t k;

	for (k = 0; k < n; k++) {
		set(&st, "Address", "%zu", k);
		set(&st, "Description", ide ? "IDE Controller" :
		    "SCSI Controller");
		set(&st, "ElementName", ide ? "IDE Controller %zu" :
		    "SCSI Controller %zu", k);
		set(&st, "InstanceID", "%u", first + (unsigned)k);
		if (!ide)
			set(&st, "ResourceSubType", a->controller ==
			    OVF_BUSLOGIC ? "buslogic" : "lsilogic");
		set(&st, "ResourceType", "%d", ide ? RT_IDE : RT_SCSI);
		write_settings(x, "Item", "rasd", &st);
	}
}

/* Disk i on its controller; SCSI id 7 is the controller's. */
static void write_disk_items(struct xw *x, const struct ovf_appliance *a,
    unsigned first_controller, unsigned *id)
{
	struct settings st = { .n = 0 };
	size_t per = units_per_controller(a), i, unit;

	for (i = 0; i < a->ndisks; i++) {
		unit = i % per;
		if (a->controller != OVF_IDE && unit >= 7)
			unit++;
		set(&st, "AddressOnParent", "%zu", unit);
		set(&st, "ElementName", "Hard Disk %zu", i + 1);
		set(&st, "HostResource", "ovf:/disk/vmdisk%zu", i + 1);
		set(&st, "InstanceID", "%u", (*id)++);
		set(&st, "Parent", "%u", first_controller + (unsigned)(i / per));
		set(&st, "ResourceType", "%d", RT_DISK);
		if (a->version == 2)
			write_settings(x, "StorageItem", "sasd", &st);
		else
			write_settings(x, "Item", "rasd", &st);
	}
}

static void write_nic(struct xw *x, const struct ovf_appliance *a,
    unsigned *id)
{
	struct settings st = { .n = 0 };
	const char *type = a->nic == OVF_VMXNET3 ? "VmxNet3" : "E1000";

	set(&st, "AutomaticAllocation", "true");
	set(&st, "Connection", NETWORK_NAME);
	set(&st, "Description", "%s ethernet adapter on \"%s\"", type,
	    NETWORK_NAME);
	set(&st, "ElementName", "Ethernet 1");
	set(&st, "InstanceID", "%u", (*id)++);
	set(&st, "ResourceSubType", "%s", type);
	set(&st, "ResourceType", "%d", RT_ETHERNET);
	if (a->version == 2)
		write_settings(x, "EthernetPortItem", "epasd", &st);
	else
		write_settings(x, "Item", "rasd", &st);
}

/*
 * OVF 1: every device an Item.  OVF 2: the schema's order, Items (CPU,
 * memory, controllers), then EthernetPortItems, then StorageItems.
 */
static void write_hardware_section(struct xw *x, const struct ovf_appliance *a)
{
	size_t per = units_per_controller(a);
	size_t ncontrollers = (a->ndisks + per - 1) / per;
	unsigned id = 1, first_controller;

	start(x, "VirtualHardwareSection");
	text_element(x, "Info", "Virtual hardware requirements");
	write_system(x, a);
	write_cpu_memory(x, a, &id);
	first_controller = id;
	write_controllers(x, a, first_controller, ncontrollers);
	id += (unsigned)ncontrollers;
	if (a->version == 2) {
		write_nic(x, a, &id);
		write_disk_items(x, a, first_controller, &id);
	} else {
		write_disk_items(x, a, first_controller, &id);
		write_nic(x, a, &id);
	}
	end(x);
}

static void write_virtual_system(struct xw *x, const struct ovf_appliance *a)
{
	start(x, "VirtualSystem");
	attr(x, "ovf:id", a->name);
	text_element(x, "Info", "A virtual machine");
	text_element(x, "Name", a->name);
	write_os_section(x, a);
	write_hardware_section(x, a);
	end(x);
}

/* The root, its namespaces (only those used), and what it holds. */
static void write_envelope(struct xw *x, const struct ovf_appliance *a)
{
	const char *ns = a->version == 2 ? OVF2_NS : OVF1_NS;

	if (xmlTextWriterStartDocument(x->w, "1.0", "UTF-8", NULL) < 0)
		x->bad = true;
	start(x, "Envelope");
	attr(x, "xmlns", ns);
	attr(x, "xmlns:ovf", ns);
	attr(x, "xmlns:rasd", RASD_NS);
	attr(x, "xmlns:vssd", VSSD_NS);
	if (a->version == 2) {
		attr(x, "xmlns:epasd", EPASD_NS);
		attr(x, "xmlns:sasd", SASD_NS);
	}
	if (a->os.vmw != NULL)
		attr(x, "xmlns:vmw", VMW_NS);
	write_references(x, a);
	write_disk_section(x, a);
	write_network_section(x);
	write_virtual_system(x, a);
	end(x);
	if (xmlTextWriterEndDocument(x->w) < 0)
		x->bad = true;
}

int ovf_write(const struct ovf_appliance *a, char **buf, size_t *len)
{
	xmlBufferPtr b = xmlBufferCreate();
	struct xw x = { NULL, false };
	int rc = 0;

	*buf = NULL;
	if (b == NULL || (x.w = xmlNewTextWriterMemory(b, 0)) == NULL) {
		xmlBufferFree(b);
		return fail(EXIT_IO, "out of memory");
	}
	if (xmlTextWriterSetIndent(x.w, 1) < 0 ||
	    xmlTextWriterSetIndentString(x.w, BAD_CAST "  ") < 0)
		x.bad = true;
	write_envelope(&x, a);
	xmlFreeTextWriter(x.w);	/* flushes into b */
	if (x.bad)
		rc = fail(EXIT_IO, "OVF: cannot write the descriptor (out of "
		    "memory, or a name that is not UTF-8)");
	else if ((*buf = malloc(xmlBufferLength(b) + 1)) == NULL)
		rc = fail(EXIT_IO, "out of memory");
	else {
		*len = xmlBufferLength(b);
		memcpy(*buf, xmlBufferContent(b), *len);
		(*buf)[*len] = '\0';
	}
	xmlBufferFree(b);
	return rc;
}
