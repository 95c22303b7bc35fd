# baton: build, demo, check, bench. Quiet unless V=1.
#
#   make		build the userspace (build/bin/)
#   make demo		install what is needed, run kvd and upgrade it under load
#   make check		install what is needed, run the selftests (ASan/UBSan)
#   make fuzz		each libFuzzer harness (fuzz/) FUZZ_TIME seconds, 600 by
#			default, with its executions, coverage and crashes
#   make bench		the acceptance benchmarks (Documentation/performance.rst)
#   make bench-repair	repair mode in the VM (BENCH_ARGS for baton-bench)
#   make bench-http	httpd and nginx under wrk, each upgraded 10 times
#   make bench-conns	the blackout against connections, 0 to 15,000: a table
#			and Documentation/blackout-conns.svg
#   make module		baton.ko, for Debian's amd64 kernel (scripts/kernel-release.sh)
#   make dkms-source	baton.ko's sources for DKMS, in $(DESTDIR)/usr/src (dkms.conf)
#   make dkms-check	dkms build of those sources, in a tree of its own
#   make man		the man pages from Documentation/, in build/man
#   make install	programs, libbaton (.a, .so), headers, baton.pc, man pages
#			under $(DESTDIR)$(PREFIX) (PREFIX=/usr/local)
#   make install-check	install into a scratch DESTDIR, build kvd against it
#			with pkg-config alone, upgrade it there
#   make deb		the Debian packages (debian/) and lintian, in build/deb

ifneq ($(V),1)
Q := @
endif

CC	?= gcc
# where everything is built; debian/rules builds in a directory of its own
BUILD	?= build
B	:= $(BUILD)
CFLAGS	:= -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-format-truncation \
	   -D_GNU_SOURCE \
	   -Iuserspace/include -Iuserspace/lib -Ibpf -Iinclude/uapi -I$(B)/bpf
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined
LDLIBS	:= -lmnl -lbpf -lsystemd -lz -lm
# batonctl apply reads its plan with libyaml
YAML_CFLAGS := $(shell pkg-config --cflags yaml-0.1)
YAML_LIBS := $(shell pkg-config --libs yaml-0.1)
CFLAGS	+= $(YAML_CFLAGS)
# a packager's own flags (dpkg-buildflags), after ours
CFLAGS	+= $(EXTRA_CFLAGS)

# libbaton's version: dkms.conf's, the module's; the shared library's
# SONAME carries its major number
VERSION	:= $(shell sed -n 's/^PACKAGE_VERSION="\(.*\)"$$/\1/p' dkms.conf)
SOMAJOR	:= $(firstword $(subst ., ,$(VERSION)))
SONAME	:= libbaton.so.$(SOMAJOR)

# make install
PREFIX	?= /usr/local
BINDIR	?= $(PREFIX)/bin
LIBDIR	?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
MANDIR	?= $(PREFIX)/share/man

LIB_SRC	:= $(wildcard userspace/lib/*.c userspace/lib/*/*.c userspace/lib/*/*/*.c)
CTL_SRC	:= $(wildcard userspace/batonctl/*.c)
EX_SRC	:= $(wildcard userspace/examples/common/*.c)
KVD_SRC	:= $(wildcard userspace/examples/kvd/*.c) $(EX_SRC)
HTTPD_SRC := $(wildcard userspace/examples/httpd/*.c) $(EX_SRC)
BENCH_SRC := $(wildcard userspace/bench/*.c)
SKEL	:= $(B)/bpf/baton_steer.skel.h
HDRS	:= $(wildcard userspace/include/*.h userspace/lib/*.h userspace/lib/*/*.h \
		userspace/lib/*/*/*.h \
		userspace/examples/kvd/*.h userspace/examples/httpd/*.h \
		userspace/examples/common/*.h \
		userspace/bench/*.h \
		userspace/batonctl/*.h bpf/*.h) $(SKEL)

# Two builds: bin/ for use, asan/ for the tests
BIN	:= $(B)/bin
ASAN	:= $(B)/asan
PROGS	:= batonctl kvd-v1 kvd-v2 httpd-v1 httpd-v2 baton-bench

all: $(addprefix $(BIN)/,$(PROGS))

define build_tree # $(1): output dir, $(2): extra flags
$(1)/obj/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -c $$< -o $$@

$(1)/obj/userspace/lib/%.o: userspace/lib/%.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -fvisibility=hidden -c $$< -o $$@

# One object, in which only the API (BATON_API) stays global
$(1)/libbaton.a: $(LIB_SRC:%.c=$(1)/obj/%.o)
	@$(if $(Q),echo "  AR      $$@")
	$(Q)$(LD) -r -o $(1)/obj/libbaton.o $$^
	$(Q)objcopy --localize-hidden $(1)/obj/libbaton.o
	$(Q)rm -f $$@ && ar rcs $$@ $(1)/obj/libbaton.o

# The objects as they are, for the tests that reach inside
$(1)/libbaton-internal.a: $(LIB_SRC:%.c=$(1)/obj/%.o)
	@$(if $(Q),echo "  AR      $$@")
	$(Q)rm -f $$@ && ar rcs $$@ $$^

$(1)/batonctl: $(CTL_SRC:%.c=$(1)/obj/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) $(LDFLAGS) -o $$@ $$^ $(LDLIBS) $(YAML_LIBS)

$(1)/baton-bench: $(BENCH_SRC:%.c=$(1)/obj/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)

$(1)/kvd-v1: $(KVD_SRC:%.c=$(1)/obj/v1/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)

$(1)/kvd-v2: $(KVD_SRC:%.c=$(1)/obj/v2/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)

$(1)/httpd-v1: $(HTTPD_SRC:%.c=$(1)/obj/v1/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)

$(1)/httpd-v2: $(HTTPD_SRC:%.c=$(1)/obj/v2/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) $(LDFLAGS) -o $$@ $$^ $(LDLIBS)

$(1)/obj/v1/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -DKVD_VERSION=1 -DHTTPD_VERSION=1 -c $$< -o $$@

$(1)/obj/v2/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -DKVD_VERSION=2 -DHTTPD_VERSION=2 -c $$< -o $$@
endef

# The steering program, and the skeleton libbaton loads it with
BPF_CFLAGS := -g -O2 -target bpf -Wall -Werror -Ibpf \
	      -I/usr/include/$(shell $(CC) -dumpmachine)

$(B)/bpf/%.bpf.o: bpf/%.bpf.c bpf/%_maps.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BPF     $@")
	$(Q)clang $(BPF_CFLAGS) -c $< -o $@

$(B)/bpf/%.skel.h: $(B)/bpf/%.bpf.o
	@$(if $(Q),echo "  GEN     $@")
	$(Q)bpftool gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

.SECONDARY: $(B)/bpf/baton_steer.bpf.o $(SKEL)

$(eval $(call build_tree,$(BIN),))
$(eval $(call build_tree,$(ASAN),$(SANFLAGS)))

# The shared library: position-independent objects, and a version script
# that leaves global only the API's names (baton_*, those BATON_API marks)
PIC	:= $(B)/pic
SHLIB	:= $(BIN)/libbaton.so.$(VERSION)

$(PIC)/obj/%.o: %.c $(HDRS)
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(CFLAGS) -fPIC -fvisibility=hidden -c $< -o $@

$(SHLIB): $(LIB_SRC:%.c=$(PIC)/obj/%.o) userspace/lib/libbaton.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared $(LDFLAGS) -Wl,-soname,$(SONAME) -Wl,-z,defs \
		-Wl,--version-script=userspace/lib/libbaton.map \
		-o $@ $(filter %.o,$^) $(LDLIBS)
	$(Q)ln -sf $(notdir $@) $(BIN)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(BIN)/libbaton.so

shared: $(SHLIB)

all: $(SHLIB)

deps:
	$(Q)bash scripts/deps.sh

# Kbuild (top level) and module/Kbuild; the objects land beside the sources
KREL	= $(shell bash scripts/kernel-release.sh)
KDIR	= /lib/modules/$(KREL)/build

module:
	$(Q)test -d $(KDIR) || { echo "no kernel headers in $(KDIR): run 'make deps'"; exit 1; }
	$(Q)$(MAKE) --no-print-directory -C $(KDIR) M=$(CURDIR) W=1 modules $(if $(Q),>/dev/null)
	@$(if $(Q),echo "  KMOD    module/baton.ko")

# the source tree DKMS builds baton.ko from (dkms.conf), under $(DESTDIR)/usr/src
dkms-source:
	$(Q)bash scripts/dkms-source.sh $(DESTDIR)

# dkms build from that tree, in a DKMS tree of its own under build/dkms
dkms-check: deps
	$(Q)bash scripts/dkms-check.sh

# man pages from Documentation/, checked to render without a warning:
# Documentation/NAME.rst is NAME(8) or NAME(1), libbaton.3.rst libbaton(3)
# (libbaton.rst is the library's long form)
MAN	:= $(B)/man/batonctl.8 $(B)/man/kvd.8 $(B)/man/baton-bench.1 \
	   $(B)/man/libbaton.3

man: $(MAN)

define man_page
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  MAN     $@")
	$(Q)rst2man --halt=warning $< $@.tmp
	$(Q)w=$$(MANWIDTH=80 man --warnings -l $@.tmp 2>&1 >/dev/null); \
		[ -z "$$w" ] || { echo "$$w" >&2; rm -f $@.tmp; exit 1; }
	$(Q)mv $@.tmp $@
endef

$(B)/man/%.8: Documentation/%.rst
	$(man_page)

$(B)/man/%.1: Documentation/%.rst
	$(man_page)

$(B)/man/%.3: Documentation/%.3.rst
	$(man_page)

# DESTDIR and PREFIX as usual; LIBDIR for a multiarch tree. The programs
# link libbaton.a; the shared library is for other programs, through
# baton.pc
INSTALL_PROGS := batonctl kvd-v1 kvd-v2 baton-bench
INSTALL_HDRS := userspace/include/baton.h userspace/include/baton_proto.h \
		userspace/include/baton_steer.h userspace/include/baton_tcp.h \
		bpf/baton_steer_maps.h
# baton.pc's paths, relative to its prefix where they are below it
pc_path = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

install: $(addprefix $(BIN)/,$(INSTALL_PROGS)) $(BIN)/libbaton.a $(SHLIB) \
	 $(MAN) baton.pc.in
	$(Q)install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(MANDIR)/man1 \
		$(DESTDIR)$(MANDIR)/man3 $(DESTDIR)$(MANDIR)/man8
	$(Q)install -m 0755 $(addprefix $(BIN)/,$(INSTALL_PROGS)) $(DESTDIR)$(BINDIR)/
	$(Q)install -m 0644 $(BIN)/libbaton.a $(SHLIB) $(DESTDIR)$(LIBDIR)/
	$(Q)ln -sf $(notdir $(SHLIB)) $(DESTDIR)$(LIBDIR)/$(SONAME)
	$(Q)ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libbaton.so
	$(Q)install -m 0644 $(INSTALL_HDRS) $(DESTDIR)$(INCLUDEDIR)/
	$(Q)sed -e 's|@PREFIX@|$(PREFIX)|' \
		-e 's|@LIBDIR@|$(call pc_path,$(LIBDIR))|' \
		-e 's|@INCLUDEDIR@|$(call pc_path,$(INCLUDEDIR))|' \
		-e 's|@VERSION@|$(VERSION)|' \
		baton.pc.in >$(DESTDIR)$(LIBDIR)/pkgconfig/baton.pc
	$(Q)install -m 0644 $(B)/man/batonctl.8 $(B)/man/kvd.8 $(DESTDIR)$(MANDIR)/man8/
	$(Q)install -m 0644 $(B)/man/baton-bench.1 $(DESTDIR)$(MANDIR)/man1/
	$(Q)install -m 0644 $(B)/man/libbaton.3 $(DESTDIR)$(MANDIR)/man3/
	$(Q)ln -sf kvd.8 $(DESTDIR)$(MANDIR)/man8/kvd-v1.8
	$(Q)ln -sf kvd.8 $(DESTDIR)$(MANDIR)/man8/kvd-v2.8
	@echo "  INSTALL $(DESTDIR)$(PREFIX)"

install-check: all man
	$(Q)bash scripts/install-check.sh

deb:
	$(Q)bash scripts/package.sh

demo: deps all
	$(Q)bash scripts/demo.sh

# the YAML spec of the module's family against its UAPI header; module_test
# compares it with the kernel's policy
spec:
	$(Q)python3 scripts/genl_spec.py check \
		Documentation/netlink/specs/baton.yaml include/uapi

check: deps spec
	$(Q)$(MAKE) --no-print-directory all module $(addprefix $(ASAN)/,$(PROGS)) \
		$(ASAN)/libbaton-internal.a $(BIN)/libbaton-internal.a
	@# the benchmarks' programs build too, though only make bench runs them
	$(Q)$(MAKE) --no-print-directory -C selftests \
		$(abspath $(B))/selftests/repair_bench $(abspath $(B))/selftests/cwnd_bench
	$(Q)$(MAKE) --no-print-directory install-check
	$(Q)$(MAKE) --no-print-directory -C selftests run \
		BATON_BIN=$(abspath $(ASAN))

# the harnesses of fuzz/, the VM's one with baton.ko
FUZZ_TIME ?= 600

fuzz: deps
	$(Q)$(MAKE) --no-print-directory module $(SKEL)
	$(Q)$(MAKE) --no-print-directory -C fuzz run FUZZ_TIME=$(FUZZ_TIME)

bench: deps all module $(BIN)/libbaton-internal.a
	$(Q)$(MAKE) --no-print-directory -C selftests $(abspath $(B))/selftests/repair_bench \
		$(abspath $(B))/selftests/cwnd_bench
	$(Q)bash scripts/bench.sh

# repair mode in the VM: baton-bench --mode repair $(BENCH_ARGS) and the
# cost of a connection, userspace and baton.ko; JSON on the last line
bench-repair: deps all module $(BIN)/libbaton-internal.a
	$(Q)$(MAKE) --no-print-directory -C selftests $(abspath $(B))/selftests/repair_bench \
		$(abspath $(B))/selftests/cwnd_bench
	$(Q)bash scripts/bench-repair.sh

bench-http: deps all
	$(Q)bash scripts/httpd-vs-nginx.sh

bench-conns: deps all
	$(Q)bash scripts/blackout-conns.sh

# batonctl kexec under kvd and 100 clients, in the VM (the guest runs the
# non-ASan builds; the host's client is a selftest, built with ASan)
kexec-check: deps
	$(Q)$(MAKE) --no-print-directory all module $(ASAN)/libbaton.a \
		$(ASAN)/libbaton-internal.a
	$(Q)$(MAKE) --no-print-directory -C selftests \
		$(abspath $(B))/selftests/kexec_clients BATON_BIN=$(abspath $(ASAN))
	$(Q)bash scripts/kexec-check.sh $(KEXEC_ARGS)

clean:
	$(Q)rm -rf $(B)
	$(Q)if [ -d $(KDIR) ]; then $(MAKE) --no-print-directory -C $(KDIR) M=$(CURDIR) clean >/dev/null; fi
	$(Q)$(MAKE) --no-print-directory -C selftests clean

.PHONY: all shared deps module spec dkms-source dkms-check man install install-check deb \
	demo check fuzz bench bench-repair bench-http bench-conns kexec-check clean
