# make fuzz: one libFuzzer binary per reader, with ASan and UBSan.
# Add a format by adding its name to FUZZ_FORMATS.
BUILD ?= .
FUZZ_FORMATS = raw vpc vhdx vmdk vdi qed parallels qcow2
FUZZ_CC = clang
PKGS = zlib libdeflate libarchive libxxhash libxml-2.0 nettle libzstd jansson
SAN = address,undefined -fno-sanitize-recover=undefined
FUZZ_CFLAGS = -g -O1 -std=c11 -D_GNU_SOURCE -Iinclude -Ilib \
	$(shell pkg-config --cflags $(PKGS))
FUZZ_LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread
LIB_SRC := $(filter-out lib/static/%,$(sort $(wildcard lib/*/*.c lib/fmt/*/*.c)))
HDRS := $(wildcard include/imgpipe/*.h lib/*/*.h lib/fmt/*/*.h)
# The library is compiled once with the sanitizers, then linked into each.
FUZZ_OBJ := $(patsubst %.c,$(BUILD)/test/fuzz/obj/%.o,$(LIB_SRC))
FUZZ_LIB := $(BUILD)/test/fuzz/lib/libimgpipe-fuzz.a
FUZZ_BINS := $(patsubst %,$(BUILD)/test/fuzz/bin/fuzz_%,$(FUZZ_FORMATS))
# Parsers with a harness of their own: test/fuzz/fuzz_NAME.c.
FUZZ_PARSERS = ovf manifest uec
PARSER_BINS := $(patsubst %,$(BUILD)/test/fuzz/bin/fuzz_%,$(FUZZ_PARSERS))

all: $(FUZZ_BINS) $(PARSER_BINS)

$(BUILD)/test/fuzz/obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,$(SAN) -c -o $@ $<

$(FUZZ_LIB): $(FUZZ_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(PARSER_BINS): $(BUILD)/test/fuzz/bin/fuzz_%: test/fuzz/fuzz_%.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(SAN) -o $@ $< $(FUZZ_LIB) $(FUZZ_LIBS)

$(BUILD)/test/fuzz/bin/fuzz_%: test/fuzz/fuzz_reader.c $(FUZZ_LIB)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer,$(SAN) -DFUZZ_FORMAT='"$*"' -o $@ $< $(FUZZ_LIB) $(FUZZ_LIBS)

.PHONY: all
.SECONDARY: $(FUZZ_OBJ)
