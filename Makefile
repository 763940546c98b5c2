# imgpipe: streaming virtual-machine image tools over one static library.
# BUILD=DIR puts every generated file under DIR (default: this tree).
#
# CPPFLAGS, CFLAGS, LDFLAGS and LDLIBS are the builder's, from the command
# line or the environment (a packager's -D_FORTIFY_SOURCE=2, CFLAGS=-O0):
# what the build itself needs is in IMGPIPE_CPPFLAGS, IMGPIPE_CFLAGS and
# IMGPIPE_LIBS, which no user setting replaces.
VERSION := $(shell sed -n 's/^\#define IMGPIPE_VERSION "\(.*\)"$$/\1/p' include/imgpipe/cli.h)
PREFIX ?= /usr/local
EXEC_PREFIX ?= $(PREFIX)
BINDIR ?= $(EXEC_PREFIX)/bin
LIBDIR ?= $(EXEC_PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
DATADIR ?= $(PREFIX)/share
MANDIR ?= $(DATADIR)/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
# where bash-completion looks (pkg-config tells), under our DATADIR
BASHCOMPDIR ?= $(shell pkg-config --define-variable=datadir=$(DATADIR) \
    --variable=completionsdir bash-completion 2>/dev/null || \
    echo $(DATADIR)/bash-completion/completions)
INSTALL ?= install
INSTALL_PROGRAM ?= $(INSTALL) -m 0755
INSTALL_DATA ?= $(INSTALL) -m 0644
BUILD ?= .
PKGS = zlib libdeflate libarchive libxxhash libxml-2.0 nettle libzstd jansson
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CFLAGS ?= -O2 -g
IMGPIPE_CPPFLAGS = -D_GNU_SOURCE -Iinclude -Ilib $(PKG_CFLAGS)
IMGPIPE_CFLAGS = -std=c11 -Wall -Wextra
IMGPIPE_LIBS = $(PKG_LIBS) -lpthread
# ours first (our headers before any installed copy), the builder's last
# (their -O0 or -Werror wins)
ALL_CFLAGS = $(IMGPIPE_CPPFLAGS) $(CPPFLAGS) $(IMGPIPE_CFLAGS) $(CFLAGS)

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
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/bin/%: cmd/%.c $(LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(IMGPIPE_LIBS) $(LDLIBS)

$(BUILD)/test/unit/bin/%: test/unit/%.c test/unit/unit.h $(LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(IMGPIPE_LIBS) $(LDLIBS)

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
	$(CC) $(ALL_CFLAGS) -DICUDATA_SYMBOL=icudt$(ICU_MAJOR)_dat -c -o $@ $<

$(STATIC_DIR)/%: cmd/%.c $(LIB) $(HDRS) $(STATIC_STUB)
	@mkdir -p $(@D) $(BUILD)/obj/static
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -static -s -Wl,-Map=$(BUILD)/obj/static/$*.map \
	    -o $@ $< $(LIB) $(STATIC_STUB) $(STATIC_LIBS) $(LDLIBS)

BENCH_SRC := $(sort $(wildcard test/bench/*.c))
BENCH_BINS := $(patsubst test/bench/%.c,$(BUILD)/test/bench/bin/%,$(BENCH_SRC))

$(BUILD)/test/bench/bin/%: test/bench/%.c $(LIB) $(HDRS)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(LDFLAGS) -o $@ $< $(LIB) $(IMGPIPE_LIBS) $(LDLIBS)

# Build and test dependencies, installed only when something is missing.
deps:
	@sh test/deps.sh

check: deps
	@$(MAKE) --no-print-directory all units
	@IMGPIPE_BUILD=$(BUILD) sh test/run.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@IMGPIPE_BUILD=$(BUILD) sh test/demo.sh

# make bench: one table of same-run ratios against the peer tools
# (test/bench/table.sh; BENCH_RUNS, BENCH_OUTS, BENCH_JOBS, BENCH_PRESENT,
# BENCH_SYNC); make bench-all:
# every test/bench/*.sh with its own table.
bench: all
	@IMGPIPE_BIN=$(abspath $(BUILD))/bin sh test/bench/table.sh

bench-all: all $(BENCH_BINS)
	@IMGPIPE_BUILD=$(BUILD) sh test/bench/run.sh

fuzz: $(LIB)
	@$(MAKE) --no-print-directory -f test/fuzz/fuzz.mk BUILD=$(BUILD)

# The library for C programs (imgpipe(7) has an example): the archive,
# the headers and a pkg-config file whose prefix is the install's.
PC := $(BUILD)/lib/imgpipe.pc

$(PC): Makefile include/imgpipe/cli.h
	@mkdir -p $(@D)
	printf '%s\n' 'prefix=$(PREFIX)' 'exec_prefix=$(EXEC_PREFIX)' \
	    'libdir=$(LIBDIR)' 'includedir=$(INCLUDEDIR)' '' \
	    'Name: imgpipe' \
	    'Description: streaming virtual-machine disk image readers and writers' \
	    'Version: $(VERSION)' 'Requires: $(PKGS)' \
	    'Libs: -L$${libdir} -limgpipe -lpthread' \
	    'Cflags: -I$${includedir}' > $@

# Bash completion: one script, derived at run time from each program's
# --help and --list-formats, installed under every program's name.
COMPLETION := $(BUILD)/completion/imgpipe

$(COMPLETION): completion/imgpipe.bash Makefile
	@mkdir -p $(@D)
	sed 's/@PROGRAMS@/$(notdir $(PROGS))/' completion/imgpipe.bash > $@

MAN_PAGES := $(sort $(wildcard man/*.1 man/*.7))
HEADERS := $(sort $(wildcard include/imgpipe/*.h))

install: all $(LIB) $(PC) $(COMPLETION)
	$(INSTALL) -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 \
	    $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(LIBDIR) \
	    $(DESTDIR)$(INCLUDEDIR)/imgpipe $(DESTDIR)$(PKGCONFIGDIR) \
	    $(DESTDIR)$(BASHCOMPDIR)
	$(INSTALL_PROGRAM) $(PROGS) $(DESTDIR)$(BINDIR)/
	$(INSTALL_DATA) $(filter %.1,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man1/
	$(INSTALL_DATA) $(filter %.7,$(MAN_PAGES)) $(DESTDIR)$(MANDIR)/man7/
	$(INSTALL_DATA) $(LIB) $(DESTDIR)$(LIBDIR)/
	$(INSTALL_DATA) $(HEADERS) $(DESTDIR)$(INCLUDEDIR)/imgpipe/
	$(INSTALL_DATA) $(PC) $(DESTDIR)$(PKGCONFIGDIR)/
	$(INSTALL_DATA) $(COMPLETION) $(DESTDIR)$(BASHCOMPDIR)/imgpipe
	for p in $(notdir $(PROGS)); do \
	    ln -sf imgpipe $(DESTDIR)$(BASHCOMPDIR)/$$p || exit 1; done

install-strip:
	$(MAKE) INSTALL_PROGRAM='$(INSTALL_PROGRAM) -s' install

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(notdir $(PROGS))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(filter %.1,$(MAN_PAGES)))) \
	    $(addprefix $(DESTDIR)$(MANDIR)/man7/,$(notdir $(filter %.7,$(MAN_PAGES)))) \
	    $(DESTDIR)$(LIBDIR)/libimgpipe.a \
	    $(addprefix $(DESTDIR)$(INCLUDEDIR)/imgpipe/,$(notdir $(HEADERS))) \
	    $(DESTDIR)$(PKGCONFIGDIR)/imgpipe.pc \
	    $(DESTDIR)$(BASHCOMPDIR)/imgpipe \
	    $(addprefix $(DESTDIR)$(BASHCOMPDIR)/,$(notdir $(PROGS)))
	-rmdir $(DESTDIR)$(INCLUDEDIR)/imgpipe

clean:
	rm -rf $(BUILD)/bin $(BUILD)/obj $(BUILD)/lib/libimgpipe.a \
	    $(BUILD)/test/unit/bin $(BUILD)/test/fuzz/bin $(BUILD)/test/fuzz/obj \
	    $(BUILD)/test/fuzz/lib $(BUILD)/test/bench/bin \
	    $(BUILD)/bin-static $(PC) $(COMPLETION)

.PHONY: all units static print-static-libs deps check demo bench bench-all fuzz \
    install install-strip uninstall clean
.SECONDARY: $(LIB_OBJ)
