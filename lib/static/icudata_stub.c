/*
 * An empty ICU data table for the static programs (make static).
 *
 * Debian's libxml2 is built with ICU, so a static link of anything that
 * parses XML (ovaextract's OVF descriptor) pulls libicuuc, whose code refers
 * to the ICU data blob icudtNN_dat: 30 MiB of libicudata.a, for character
 * sets an OVF descriptor never uses (libxml2 decodes UTF-8, UTF-16, Latin-1
 * and ASCII itself).  This is the table ICU's own "stubdata" library
 * provides for builds without data: a valid header with no entries, so ICU
 * reports any converter it would need as missing instead of crashing, and
 * libxml2 rejects such a document as an unsupported encoding.
 *
 * ICUDATA_SYMBOL is icudt<ICU major version>_dat; the Makefile sets it.
 */
#include <stdint.h>

#ifndef ICUDATA_SYMBOL
#error "define ICUDATA_SYMBOL (icudt<major>_dat)"
#endif

/* ICU's DataHeader/UDataInfo followed by an empty table of contents
 * (icu4c/source/common/udatamem.h, stubdata/stubdata.cpp). */
struct icu_stub_data {
	uint16_t header_size;		/* 32 */
	uint8_t magic1, magic2;		/* 0xda, 0x27 */
	uint16_t info_size;		/* sizeof(UDataInfo) = 20 */
	uint16_t info_reserved;
	uint8_t is_big_endian;
	uint8_t charset_family;		/* 0: ASCII */
	uint8_t sizeof_uchar;		/* 2 */
	uint8_t reserved;
	uint8_t data_format[4];		/* "ToCP": a table of contents */
	uint8_t format_version[4];
	uint8_t data_version[4];
	uint8_t padding[8];
	uint32_t count;			/* no entries */
	uint32_t toc_reserved;
	uint32_t toc[4];
};

extern const struct icu_stub_data ICUDATA_SYMBOL;
const struct icu_stub_data ICUDATA_SYMBOL = {
	.header_size = 32,
	.magic1 = 0xda,
	.magic2 = 0x27,
	.info_size = 20,
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
	.is_big_endian = 1,
#endif
	.sizeof_uchar = 2,
	.data_format = { 'T', 'o', 'C', 'P' },
	.format_version = { 1, 0, 0, 0 },
};
