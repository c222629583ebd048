# bucketfs - plain Makefile with pkg-config.
#
#   make              build build/bucketfs and build/bucketctl
#   make SANITIZE=address,undefined   the same under ASan/UBSan (in build-san/)
#   make run          build and mount a demo of two local buckets at ./mnt
#   make check        every unit and integration test (also under ASan/UBSan)
#   make install      PREFIX=/usr/local DESTDIR=
#
# Missing Debian packages are installed first when running as root
# (scripts/deps.sh); otherwise the exact apt-get line is printed.

PREFIX   ?= /usr/local
DESTDIR  ?=
SANITIZE ?=
CC       ?= cc
PKGS     := fuse3 libcurl libcrypto sqlite3 inih expat libpq

ifeq ($(SANITIZE),)
BUILD    ?= build
SANFLAGS :=
else
BUILD    ?= build-san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=undefined
endif
# Lock-ownership checks (include/bfs_lock.h): on in every sanitizer build
# (build-san: its unit tests and the integration daemon; build-tsan), off
# in the plain one.  LOCK_CHECK=1/0 overrides (use a BUILD= of its own).
LOCK_CHECK ?= $(if $(SANITIZE),1,0)
LOCKFLAGS  := $(if $(filter 1,$(LOCK_CHECK)),-DBFS_LOCK_CHECK)

WARN     := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wwrite-strings -Wimplicit-fallthrough -Werror
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
SYSTEMD_CFLAGS := $(shell pkg-config --exists libsystemd 2>/dev/null && echo -DHAVE_SYSTEMD)
SYSTEMD_LIBS   := $(shell pkg-config --exists libsystemd 2>/dev/null && pkg-config --libs libsystemd)

CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=35 $(WARN) -Iinclude \
            -fstack-protector-strong -MMD -MP $(PKG_CFLAGS) $(SYSTEMD_CFLAGS) $(SANFLAGS) $(LOCKFLAGS)
ifeq ($(SANITIZE),)
CFLAGS   += -D_FORTIFY_SOURCE=2
endif
LDFLAGS  += $(SANFLAGS)
LIBS     := $(PKG_LIBS) $(SYSTEMD_LIBS) -lpthread

# Layers: util, crypto, store, http, provider, cache, route, vfs -> libbfs.a (no
# FUSE: the unit tests link it); the FUSE adapter + daemon -> bucketfs;
# ctl -> bucketctl.
LIB_SRCS    := $(wildcard src/util/*.c src/crypto/*.c src/store/*.c \
                 src/http/*.c src/provider/*.c src/cache/*.c src/route/*.c \
                 src/vfs/*.c)
DAEMON_SRCS := $(wildcard src/fuse/*.c src/daemon/*.c)
CTL_SRCS    := $(wildcard src/ctl/*.c)
UNIT_SRCS   := $(wildcard tests/unit/*.c)
# The adapter's errno table has no FUSE header: the unit tests link it
# (tests/unit/test_errno.c), and nothing else of src/fuse.
UNIT_FUSE_SRCS := src/fuse/errno.c

LIB_OBJS    := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
DAEMON_OBJS := $(DAEMON_SRCS:%.c=$(BUILD)/obj/%.o)
CTL_OBJS    := $(CTL_SRCS:%.c=$(BUILD)/obj/%.o)
UNIT_OBJS   := $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) \
               $(UNIT_FUSE_SRCS:%.c=$(BUILD)/obj/%.o)

LIB       := $(BUILD)/libbfs.a
BIN_FS    := $(BUILD)/bucketfs
BIN_CTL   := $(BUILD)/bucketctl
BIN_UNIT  := $(BUILD)/unit-tests

PYTEST    ?= /usr/bin/python3 -m pytest

.PHONY: all deps test-deps run check unit integration install clean fuzz fuzz-corpus bench tsan \
        check-docs check-pg

# libFuzzer targets (clang): tests/fuzz/fuzz_NAME.c with seeds in
# tests/fuzz/corpus/NAME/.  `make fuzz` runs each for FUZZ_TIME seconds;
# `make check` replays each corpus once.
FUZZ_CC    ?= clang
FUZZ_TIME  ?= 60
FUZZ_DIR   := build-fuzz
FUZZ_FLAGS := -g -O1 -std=c11 -D_GNU_SOURCE -DFUSE_USE_VERSION=35 -Iinclude \
              $(PKG_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined
FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS  := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_OBJS  := $(LIB_SRCS:%.c=$(FUZZ_DIR)/obj/%.o)

all: deps
	@$(MAKE) --no-print-directory $(BIN_FS) $(BIN_CTL)

deps:
	@scripts/deps.sh build

test-deps:
	@scripts/deps.sh test

# V=1 shows whole command lines.
ifeq ($(V),1)
Q :=
else
Q := @
endif

# src/cache and src/vfs see each other's private headers: the caches read
# the vfs's settings, stat defaults and staging budget (vfs_int.h), the vfs
# uses the cache API (attrcache.h, readcache.h).
$(BUILD)/obj/src/cache/%.o $(FUZZ_DIR)/obj/src/cache/%.o: CFLAGS += -Isrc/vfs
$(BUILD)/obj/src/cache/%.o $(FUZZ_DIR)/obj/src/cache/%.o: FUZZ_FLAGS += -Isrc/vfs
$(BUILD)/obj/src/vfs/%.o $(FUZZ_DIR)/obj/src/vfs/%.o: CFLAGS += -Isrc/cache
$(BUILD)/obj/src/vfs/%.o $(FUZZ_DIR)/obj/src/vfs/%.o: FUZZ_FLAGS += -Isrc/cache

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c -o $@ $<

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN_FS): $(DAEMON_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(DAEMON_OBJS) $(LIB) $(LIBS)

$(BIN_CTL): $(CTL_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CTL_OBJS) $(LIB) $(LIBS)

$(BIN_UNIT): $(UNIT_OBJS) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJS) $(LIB) $(LIBS) $(shell pkg-config --libs check)

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_FLAGS) -c -o $@ $<

$(FUZZ_DIR)/libbfs.a: $(FUZZ_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_DIR)/libbfs.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_DIR)/libbfs.a $(LIBS)

fuzz: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f#$(FUZZ_DIR)/fuzz_}; \
		mkdir -p tests/fuzz/out/$$n; \
		echo "fuzz: $$n for $(FUZZ_TIME) s"; \
		$$f -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
			tests/fuzz/out/$$n tests/fuzz/corpus/$$n; done

fuzz-corpus: $(FUZZ_BINS)
	@set -e; for f in $(FUZZ_BINS); do n=$${f#$(FUZZ_DIR)/fuzz_}; \
		echo "fuzz corpus: $$n"; \
		$$f -runs=0 tests/fuzz/corpus/$$n 2>&1 | tail -1; done

bench: all test-deps
	/usr/bin/python3 bench/bench.py --runs 3

check-docs:
	scripts/check-man.sh
	scripts/verify-units.sh $(abspath $(BIN_FS))
	@rm -rf $(BUILD)/destdir
	@$(MAKE) --no-print-directory install DESTDIR=$(abspath $(BUILD))/destdir >/dev/null
	@for f in $(PREFIX)/bin/bucketfs $(PREFIX)/bin/bucketctl \
		$(PREFIX)/share/man/man8/bucketfs.8 $(PREFIX)/share/man/man8/bucketctl.8 \
		$(PREFIX)/share/man/man5/bucketfs.conf.5 /etc/bucketfs/bucketfs.conf.example \
		/lib/systemd/system/bucketfs.service /lib/systemd/system/bucketfs@.service; do \
		test -s $(BUILD)/destdir$$f || { echo "install: $$f missing" >&2; exit 1; }; done
	@echo "install: every file in place under $(BUILD)/destdir"

run: all
	@scripts/demo.sh

# The whole suite: normal build with -Werror, unit tests, then the same
# under ASan/UBSan, and the integration suite against the sanitized daemon
# (BUCKETFS_SANITIZED=1: the `memory` tests skip there, RSS is inflated),
# then the `memory` tests (peak RSS of a 1 GiB write and read, ~30 s)
# against the plain build/ daemon.
check: deps test-deps
	@$(MAKE) --no-print-directory $(BIN_FS) $(BIN_CTL) $(BIN_UNIT)
	@$(MAKE) --no-print-directory SANITIZE=address,undefined \
		build-san/bucketfs build-san/bucketctl build-san/unit-tests
	$(BIN_UNIT)
	ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
		build-san/unit-tests
	@$(MAKE) --no-print-directory fuzz-corpus check-docs
	BUCKETFS_SANITIZED=1 BUCKETFS_BUILD=$(CURDIR)/build-san \
		$(PYTEST) -q -p no:cacheprovider tests/integration
	BUCKETFS_BUILD=$(CURDIR)/build $(PYTEST) -q -p no:cacheprovider -m memory \
		tests/integration
	@$(MAKE) --no-print-directory check-pg
	@$(MAKE) --no-print-directory tsan

# The catalog suites once more with every mount's catalog in PostgreSQL
# on local and s3 buckets (the catalog code is the same for every
# provider; test_pg.py already ran above; tests/integration/pg.py starts and stops a
# private cluster).
PG_SUITES := tests/integration/test_bucketctl.py tests/integration/test_tree.py \
             tests/integration/test_views.py tests/integration/test_ctlsession.py
check-pg: $(BIN_FS) $(BIN_CTL)
	BUCKETFS_TEST_DATABASE=postgresql BUCKETFS_TEST_PROVIDERS=local,s3 \
		BUCKETFS_BUILD=$(CURDIR)/build \
		$(PYTEST) -q -p no:cacheprovider $(PG_SUITES)

# The daemon under ThreadSanitizer through the suites that drive it hardest
# (file semantics on every provider, faults, parallel writers, journal,
# signals, a full cache disk: writes evicting cached blocks, streaming and
# resumed multipart uploads: part threads beside the writer).  A report fails the test (conftest scans stderr; TSan also
# makes the daemon exit 66).  r2 and gcs are s3 with other endpoints and
# signing presets (the same threads and locks), so TSan runs local, s3 and
# azure only; the ASan/UBSan run above covers every provider.
TSAN_TESTS := tests/integration/test_files.py tests/integration/test_reliability.py \
              tests/integration/test_journal.py tests/integration/test_service.py \
              tests/integration/test_tree.py tests/integration/test_diskfull.py \
              tests/integration/test_multipart.py tests/integration/test_ctlsession.py \
              tests/integration/test_caches.py
tsan:
	@$(MAKE) --no-print-directory SANITIZE=thread BUILD=build-tsan \
		build-tsan/bucketfs build-tsan/bucketctl
	TSAN_OPTIONS=second_deadlock_stack=1 BUCKETFS_SANITIZED=1 \
		BUCKETFS_TEST_PROVIDERS=local,s3,azure \
		BUCKETFS_BUILD=$(CURDIR)/build-tsan \
		$(PYTEST) -q -p no:cacheprovider $(TSAN_TESTS)

unit: $(BIN_UNIT)
	$(BIN_UNIT)

integration: $(BIN_FS) $(BIN_CTL)
	BUCKETFS_BUILD=$(CURDIR)/$(BUILD) $(PYTEST) -q -p no:cacheprovider tests/integration

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man5 \
		$(DESTDIR)$(PREFIX)/share/man/man8 $(DESTDIR)/etc/bucketfs \
		$(DESTDIR)/lib/systemd/system
	install -m 0755 $(BIN_FS) $(BIN_CTL) $(DESTDIR)$(PREFIX)/bin/
	install -m 0644 docs/bucketfs.8 docs/bucketctl.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -m 0644 docs/bucketfs.conf.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 0644 etc/bucketfs.conf.example $(DESTDIR)/etc/bucketfs/
	install -m 0644 systemd/bucketfs.service systemd/bucketfs@.service \
		$(DESTDIR)/lib/systemd/system/

clean:
	rm -rf build build-san build-fuzz build-tsan

-include $(LIB_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(CTL_OBJS:.o=.d) $(UNIT_OBJS:.o=.d)
