# make fuzz: one libFuzzer binary per reader, with ASan and UBSan.
# Add a format by adding its name to FUZZ_FORMATS.
BUILD ?= .
FUZZ_FORMATS = raw vpc vhdx vmdk vdi qed parallels qcow2
FUZZ_CC = clang
PKGS = zlib libarchive libxxhash libxml-2.0 nettle libzstd
FUZZ_CFLAGS = -g -O1 -std=c11 -D_GNU_SOURCE -Iinclude -Ilib \
	-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
	$(shell pkg-config --cflags $(PKGS))
FUZZ_LIBS = $(shell pkg-config --libs $(PKGS)) -lpthread
LIB_SRC := $(sort $(wildcard lib/*.c lib/fmt/*.c))
FUZZ_BINS := $(patsubst %,$(BUILD)/test/fuzz/bin/fuzz_%,$(FUZZ_FORMATS))
# Parsers with a harness of their own: test/fuzz/fuzz_NAME.c.
FUZZ_PARSERS = ovf manifest uec
PARSER_BINS := $(patsubst %,$(BUILD)/test/fuzz/bin/fuzz_%,$(FUZZ_PARSERS))

all: $(FUZZ_BINS) $(PARSER_BINS)

$(PARSER_BINS): $(BUILD)/test/fuzz/bin/fuzz_%: test/fuzz/fuzz_%.c $(LIB_SRC)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(LIB_SRC) $(FUZZ_LIBS)

$(BUILD)/test/fuzz/bin/fuzz_%: test/fuzz/fuzz_reader.c $(LIB_SRC)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -DFUZZ_FORMAT='"$*"' -o $@ $< $(LIB_SRC) $(FUZZ_LIBS)

.PHONY: all
