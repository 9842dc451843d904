# logsponge - plain Makefile.  `make`, `make check`, `make install`,
# `make SANITIZE=address,undefined check`, `make demo`, `make bench`.
VERSION    = 0.1.0
SOVERSION  = 0
PREFIX    ?= /usr/local
BINDIR    ?= $(PREFIX)/bin
LIBDIR    ?= $(PREFIX)/lib
INCDIR    ?= $(PREFIX)/include
MANDIR    ?= $(PREFIX)/share/man
PKGCONFIGDIR ?= $(LIBDIR)/pkgconfig
DESTDIR   ?=
PYTHON    ?= /usr/bin/python3
# Debian's python3 looks in /usr/lib/python3/dist-packages and, under
# /usr/local, in /usr/local/lib/python3.X/dist-packages
PYTHONDIR ?= $(if $(filter /usr,$(PREFIX)),$(PREFIX)/lib/python3/dist-packages,$(shell $(PYTHON) -c 'import sys; print("$(PREFIX)/lib/python%d.%d/dist-packages" % sys.version_info[:2])' 2>/dev/null || echo $(PREFIX)/lib/python3/dist-packages))
UNITDIR   ?= $(PREFIX)/lib/systemd/system
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions
DOCDIR    ?= $(PREFIX)/share/doc/logsponge

CC        ?= cc
OPT       ?= -O2 -g
WARN       = -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
             -Wvla -Wwrite-strings -Wformat=2 -Wpointer-arith -Wcast-qual \
             -Wundef -Werror
SANITIZE  ?=
ifneq ($(SANITIZE),)
BUILD     ?= build-san
SANFLAGS   = -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
else
BUILD     ?= build
SANFLAGS   =
endif

PKGS       = sqlite3 jansson inih libesmtp-1.0 openssl zlib libhs
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null || echo -lsqlite3 -ljansson -linih -lesmtp -lssl -lcrypto -lz -lhs) -lpthread -ldl
CHECK_LIBS = $(shell pkg-config --libs check 2>/dev/null || echo -lcheck)
# the CLI reads the journal (tail); the library does not link it
CLI_LIBS   = $(shell pkg-config --libs libsystemd 2>/dev/null || echo -lsystemd)

# The library sees its private headers; the command only the public one.
# The test build of the library (-DSPONGE_TESTING) adds the fault hooks.
LIB_CPPFLAGS  = $(CPPFLAGS) -Iinclude -Isrc
CLI_CPPFLAGS  = $(CPPFLAGS) -Iinclude
TEST_CPPFLAGS = $(LIB_CPPFLAGS) -DSPONGE_TESTING
DEPFLAGS      = -MMD -MP
CFLAGS    ?=
ALL_CFLAGS = -std=c11 $(OPT) $(WARN) $(SANFLAGS) $(PKG_CFLAGS) $(CFLAGS)
LIB_CFLAGS = $(ALL_CFLAGS) -fPIC -fvisibility=hidden
LDFLAGS   += $(SANFLAGS)

LIB_SRC = src/buf.c src/error.c src/host.c src/mime.c src/utf8.c src/summary.c src/kind_table.c src/level.c src/timeutil.c \
          src/match.c src/rules.c src/config.c \
          src/spool.c src/sources.c src/handles.c src/store_error.c src/store.c src/store_batch.c src/store_counts.c src/store_rules.c src/store_rejudge.c src/store_kinds.c src/store_newkinds.c src/store_positions.c src/store_runs.c src/runs.c \
          src/store_query.c src/plan.c src/digest.c src/digest_rules.c src/digest_kinds.c src/digest_runs.c src/compose.c src/size.c src/flush.c src/check.c src/smtp.c \
          src/smtp_conn.c src/smtp_relay.c \
          src/transport_util.c src/transports.c src/transport_local.c src/transport_sendmail.c \
          src/transport_maildir.c src/formats.c src/ruleset.c src/rules_apply.c src/kinds_learn.c src/command.c src/policy.c src/abi.c \
          src/zone.c src/guard.c src/spool_path.c src/tzif.c
CLI_SRC = cli/main.c cli/add.c cli/lines.c cli/join.c cli/run.c cli/jobs.c cli/spools.c cli/tail.c cli/tail_journal.c cli/tail_follow.c cli/query.c cli/flush.c \
          cli/rules.c cli/rules_spool.c cli/kinds.c
UNIT_SRC = $(wildcard tests/unit/*.c)

LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
TLIB_OBJ = $(LIB_SRC:%.c=$(BUILD)/t/%.o) $(BUILD)/t/src/testhooks.o
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
UNIT_OBJ = $(UNIT_SRC:%.c=$(BUILD)/%.o)

STATIC  = $(BUILD)/liblogsponge.a
SHARED  = $(BUILD)/liblogsponge.so.$(VERSION)
BIN     = $(BUILD)/logsponge
TSTATIC = $(BUILD)/liblogsponge-test.a
TBIN    = $(BUILD)/logsponge-test
UNIT    = $(BUILD)/unit-tests

.PHONY: all deps check lint unit e2e install uninstall clean demo bench man-check \
        fuzz valgrind
all: $(STATIC) $(SHARED) $(BIN)

# Installs the Debian packages the build and the tests need, when missing.
deps:
	@sh tools/deps.sh

$(BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(LIB_CPPFLAGS) $(DEPFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/t/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(DEPFLAGS) $(LIB_CFLAGS) -c $< -o $@

$(BUILD)/cli/%.o: cli/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CLI_CPPFLAGS) $(DEPFLAGS) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/tests/unit/%.o: tests/unit/%.c
	@mkdir -p $(dir $@)
	$(CC) $(TEST_CPPFLAGS) $(DEPFLAGS) $(ALL_CFLAGS) -Wno-missing-prototypes -c $< -o $@

-include $(LIB_OBJ:.o=.d) $(TLIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(UNIT_OBJ:.o=.d)

$(STATIC): $(LIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(TSTATIC): $(TLIB_OBJ)
	rm -f $@
	ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(CC) -shared -Wl,-soname,liblogsponge.so.$(SOVERSION) -o $@ $^ $(LDFLAGS) $(PKG_LIBS)
	ln -sf liblogsponge.so.$(VERSION) $(BUILD)/liblogsponge.so.$(SOVERSION)
	ln -sf liblogsponge.so.$(VERSION) $(BUILD)/liblogsponge.so

$(BIN): $(CLI_OBJ) $(STATIC)
	$(CC) -o $@ $(CLI_OBJ) $(STATIC) $(LDFLAGS) $(PKG_LIBS) $(CLI_LIBS)

# the command with the test hooks (crash points), for the crash tests
$(TBIN): $(CLI_OBJ) $(TSTATIC)
	$(CC) -o $@ $(CLI_OBJ) $(TSTATIC) $(LDFLAGS) $(PKG_LIBS) $(CLI_LIBS)

$(UNIT): $(UNIT_OBJ) $(TSTATIC)
	$(CC) -o $@ $(UNIT_OBJ) $(TSTATIC) $(LDFLAGS) $(PKG_LIBS) $(CHECK_LIBS)

check: deps
	@$(MAKE) --no-print-directory all $(UNIT)
	@$(MAKE) --no-print-directory lint unit e2e man-check

# Under the sanitizers the tests run in one process (CK_FORK=no), so that
# LeakSanitizer's verdict at exit is the exit status: in Check's fork
# mode a leak in a test's child process is printed but not counted.
ifneq ($(SANITIZE),)
UNIT_ENV = CK_FORK=no
endif
unit: $(UNIT)
	$(UNIT_ENV) $(UNIT)

FAULTFS = $(BUILD)/faultfs.so
$(FAULTFS): tests/e2e/faultfs.c
	$(CC) -shared -fPIC -O2 -Wall -Wextra -o $@ $< -ldl

e2e: $(BIN) $(TBIN) $(SHARED) $(FAULTFS)
	LOGSPONGE_BIN=$(abspath $(BIN)) LOGSPONGE_TEST_BIN=$(abspath $(TBIN)) \
	  LOGSPONGE_BUILD=$(abspath $(BUILD)) \
	  LOGSPONGE_CFLAGS="$(SANFLAGS)" LOGSPONGE_FAULTFS=$(abspath $(FAULTFS)) \
	  $(PYTHON) -m unittest discover -s tests/e2e -p 'test_*.py' -v

# the layers (tests/lint/layers.sh): SQL only in the store, and so on;
# dependencies run one way (tests/lint/deps.sh, over the objects)
lint: $(LIB_OBJ)
	@sh tests/lint/layers.sh
	@sh tests/lint/deps.sh $(BUILD)
	@sh tests/lint/funclen.sh

man-check:
	@for m in man/*.[0-9]; do \
	  out=$$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l $$m 2>&1 >/dev/null); \
	  if [ -n "$$out" ]; then echo "$$m: $$out"; exit 1; fi; \
	done; echo "man pages render without warnings"

demo: deps
	@$(MAKE) --no-print-directory all
	@sh tools/demo.sh $(BIN)

bench: deps
	@$(MAKE) --no-print-directory all
	@sh tests/bench/ingest.sh $(BIN)
	@sh tests/bench/flush.sh $(BIN)
	@sh tests/bench/flush_sizes.sh $(BIN)
	@sh tests/bench/commit_latency.sh $(BUILD)
	@sh tests/bench/capped.sh $(BIN)
	@sh tests/bench/rules.sh $(BIN)
	@sh tests/bench/rules_ingest.sh $(BIN)
	@sh tests/bench/caps.sh $(BUILD)
	@sh tests/bench/scale.sh $(BIN)
	@sh tests/bench/tail.sh $(BIN)

$(BUILD)/logsponge.pc: logsponge.pc.in Makefile
	@mkdir -p $(BUILD)
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' $< > $@

install: all $(BUILD)/logsponge.pc
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) \
	  $(DESTDIR)$(PKGCONFIGDIR) $(DESTDIR)$(MANDIR)/man1 \
	  $(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man5
	install -m 755 $(BIN) $(DESTDIR)$(BINDIR)/logsponge
	install -m 644 $(STATIC) $(DESTDIR)$(LIBDIR)/liblogsponge.a
	install -m 755 $(SHARED) $(DESTDIR)$(LIBDIR)/liblogsponge.so.$(VERSION)
	ln -sf liblogsponge.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblogsponge.so.$(SOVERSION)
	ln -sf liblogsponge.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblogsponge.so
	install -m 644 include/logsponge.h $(DESTDIR)$(INCDIR)/logsponge.h
	install -m 644 $(BUILD)/logsponge.pc $(DESTDIR)$(PKGCONFIGDIR)/logsponge.pc
	install -m 644 man/logsponge.1 $(DESTDIR)$(MANDIR)/man1/logsponge.1
	install -m 644 man/logsponge.3 $(DESTDIR)$(MANDIR)/man3/logsponge.3
	install -m 644 man/logsponge.conf.5 $(DESTDIR)$(MANDIR)/man5/logsponge.conf.5
	install -d $(DESTDIR)$(PYTHONDIR)/logsponge $(DESTDIR)$(UNITDIR) \
	  $(DESTDIR)$(COMPLETIONDIR) $(DESTDIR)$(DOCDIR)
	install -m 644 python/logsponge/__init__.py \
	  $(DESTDIR)$(PYTHONDIR)/logsponge/__init__.py
	for u in logsponge-flush.service logsponge-journal.service \
	  logsponge-tail.service logsponge-tail-follow.service; do \
	  sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/$$u.in > $(BUILD)/$$u && \
	  install -m 644 $(BUILD)/$$u $(DESTDIR)$(UNITDIR)/$$u || exit 1; done
	install -m 644 dist/systemd/logsponge-flush.timer \
	  dist/systemd/logsponge-tail.timer $(DESTDIR)$(UNITDIR)/
	install -m 644 dist/completion/logsponge $(DESTDIR)$(COMPLETIONDIR)/logsponge
	install -m 644 dist/logsponge.conf.example \
	  $(DESTDIR)$(DOCDIR)/logsponge.conf.example
	@if [ -z "$(DESTDIR)" ] && command -v ldconfig >/dev/null; then \
	  echo ldconfig; ldconfig; fi # the live system: tell the loader

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/logsponge $(DESTDIR)$(LIBDIR)/liblogsponge.* \
	  $(DESTDIR)$(INCDIR)/logsponge.h $(DESTDIR)$(PKGCONFIGDIR)/logsponge.pc \
	  $(DESTDIR)$(MANDIR)/man1/logsponge.1 $(DESTDIR)$(MANDIR)/man3/logsponge.3 \
	  $(DESTDIR)$(MANDIR)/man5/logsponge.conf.5 \
	  $(DESTDIR)$(UNITDIR)/logsponge-flush.service \
	  $(DESTDIR)$(UNITDIR)/logsponge-flush.timer \
	  $(DESTDIR)$(UNITDIR)/logsponge-journal.service \
	  $(DESTDIR)$(COMPLETIONDIR)/logsponge \
	  $(DESTDIR)$(DOCDIR)/logsponge.conf.example
	rm -rf $(DESTDIR)$(PYTHONDIR)/logsponge

# libFuzzer targets for every parser of untrusted bytes (clang).
FUZZ_SECONDS ?= 60
FUZZ_BUILD    = build-fuzz
FUZZ_TARGETS  = clean detect formats config time encode smtp rules
FUZZ_SAN      = -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_LIB_OBJ  = $(LIB_SRC:%.c=$(FUZZ_BUILD)/%.o)
FUZZ_BINS     = $(FUZZ_TARGETS:%=$(FUZZ_BUILD)/fuzz_%)

$(FUZZ_BUILD)/src/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(LIB_CPPFLAGS) $(DEPFLAGS) -std=c11 -g -O1 $(PKG_CFLAGS) -fsanitize=fuzzer-no-link $(FUZZ_SAN) -c $< -o $@

-include $(FUZZ_LIB_OBJ:.o=.d)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_LIB_OBJ)
	clang $(LIB_CPPFLAGS) -std=c11 -g -O1 $(PKG_CFLAGS) -fsanitize=fuzzer $(FUZZ_SAN) $< $(FUZZ_LIB_OBJ) -o $@ $(PKG_LIBS)

# The unit tests and the end-to-end tests under valgrind memcheck: any
# error or definite/indirect leak fails.
VALGRIND = valgrind -q --error-exitcode=99 --leak-check=full \
           --show-leak-kinds=definite,indirect \
           --errors-for-leak-kinds=definite,indirect
valgrind: deps
	@$(MAKE) --no-print-directory all $(UNIT) $(TBIN) $(FAULTFS)
	CK_FORK=no $(VALGRIND) $(UNIT)
	@sh tools/valgrind-e2e.sh $(abspath $(BUILD)) $(VALGRIND)

.SECONDARY: $(FUZZ_LIB_OBJ)

fuzz: deps $(FUZZ_BINS)
	@sh tools/fuzz.sh $(FUZZ_BUILD) $(FUZZ_SECONDS)

clean:
	rm -rf build build-san build-fuzz
