# imgpipe: streaming virtual-machine image tools over one static library.
# BUILD=DIR puts every generated file under DIR (default: this tree).
PREFIX ?= /usr/local
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
BUILD ?= .
PKGS = zlib libdeflate libarchive libxxhash libxml-2.0 nettle libzstd jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Iinclude -Ilib $(PKG_CFLAGS)
LDLIBS += $(PKG_LIBS) -lpthread

LIB_SRC := $(sort $(wildcard lib/*/*.c lib/fmt/*/*.c))
LIB_SRC := $(filter-out lib/static/%,$(LIB_SRC))
LIB_OBJ := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRC))
LIB := $(BUILD)/lib/libimgpipe.a
CMD_SRC := $(sort $(wildcard cmd/*.c))
PROGS := $(patsubst cmd/%.c,$(BUILD)/bin/%,$(CMD_SRC))
UNIT_SRC := $(sort $(wildcard test/unit/test_*.c))
UNITS := $(patsubst test/unit/%.c,$(BUILD)/test/unit/bin/%,$(UNIT_SRC))
HDRS := $(wildcard include/imgpipe/*.h lib/*/*.h lib/fmt/*/*.h)

all: $(PROGS)

$(LIB): $(LIB_OBJ)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

$(BUILD)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/bin/%: cmd/%.c $(LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

$(BUILD)/test/unit/bin/%: test/unit/%.c test/unit/unit.h $(LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ilib $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

units: $(UNITS)

# make static: every program linked fully statically into $(BUILD)/bin-static,
# stripped, for scratch containers (see Containerfile).  Each program is its
# own link against the archive libimgpipe.a, so it pulls only the objects it
# uses.  libarchive's .pc lists -lacl for the disk reader/writer, which no
# program links in; libxml2's lists ICU, whose C++ code needs -lstdc++ and
# whose 30 MiB data blob is replaced by an empty table (lib/static/icudata_stub.c).
# The link maps (obj/static/PROGRAM.map) say which archive members went in.
STATIC_DIR := $(BUILD)/bin-static
STATIC_PROGS := $(patsubst cmd/%.c,$(STATIC_DIR)/%,$(CMD_SRC))
STATIC_LIBS := $(filter-out -lacl,$(shell pkg-config --static --libs $(PKGS) 2>/dev/null)) -lstdc++ -lpthread
ICU_MAJOR := $(shell pkg-config --modversion icu-uc 2>/dev/null | cut -d. -f1)
STATIC_STUB := $(if $(ICU_MAJOR),$(BUILD)/obj/static/icudata_stub.o)

static: $(STATIC_PROGS)

# what the static link takes (test/bats/static.bats checks the Containerfile)
print-static-libs:
	@echo $(STATIC_LIBS)

$(BUILD)/obj/static/icudata_stub.o: lib/static/icudata_stub.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -DICUDATA_SYMBOL=icudt$(ICU_MAJOR)_dat -c -o $@ $<

$(STATIC_DIR)/%: cmd/%.c $(LIB) $(HDRS) $(STATIC_STUB)
	@mkdir -p $(@D) $(BUILD)/obj/static
	$(CC) $(CFLAGS) $(LDFLAGS) -static -s -Wl,-Map=$(BUILD)/obj/static/$*.map \
	    -o $@ $< $(LIB) $(STATIC_STUB) $(STATIC_LIBS)

BENCH_SRC := $(sort $(wildcard test/bench/*.c))
BENCH_BINS := $(patsubst test/bench/%.c,$(BUILD)/test/bench/bin/%,$(BENCH_SRC))

$(BUILD)/test/bench/bin/%: test/bench/%.c $(LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(LDLIBS)

# Build and test dependencies, installed only when something is missing.
deps:
	@sh test/deps.sh

check: deps
	@$(MAKE) --no-print-directory all units
	@IMGPIPE_BUILD=$(BUILD) sh test/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@IMGPIPE_BUILD=$(BUILD) sh test/demo.sh

bench: all $(BENCH_BINS)
	@IMGPIPE_BUILD=$(BUILD) sh test/bench/run.sh

fuzz: $(LIB)
	@$(MAKE) --no-print-directory -f test/fuzz/fuzz.mk BUILD=$(BUILD)

install: all
	mkdir -p $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7
	cp $(PROGS) $(DESTDIR)$(BINDIR)/
	cp man/*.1 $(DESTDIR)$(MANDIR)/man1/
	cp man/*.7 $(DESTDIR)$(MANDIR)/man7/

clean:
	rm -rf $(BUILD)/bin $(BUILD)/obj $(BUILD)/lib/libimgpipe.a \
	    $(BUILD)/test/unit/bin $(BUILD)/test/fuzz $(BUILD)/test/bench/bin \
	    $(BUILD)/bin-static

.PHONY: all units static print-static-libs deps check demo bench fuzz install clean
.SECONDARY: $(LIB_OBJ)
