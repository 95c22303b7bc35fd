# baton: build, demo, check, bench. Quiet unless V=1.
#
#   make		build the userspace (build/bin/)
#   make demo		install what is needed, run kvd and upgrade it under load
#   make check		install what is needed, run the selftests (ASan/UBSan)
#   make bench		the acceptance benchmarks (Documentation/performance.rst)
#   make module		baton.ko, for Debian's amd64 kernel (scripts/kernel-release.sh)

ifneq ($(V),1)
Q := @
endif

CC	?= gcc
B	:= build
CFLAGS	:= -std=gnu11 -O2 -g -Wall -Wextra -Werror -Wno-format-truncation \
	   -D_GNU_SOURCE \
	   -Iuserspace/include -Iuserspace/lib -Ibpf -Iinclude/uapi -I$(B)/bpf
SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer \
	    -fno-sanitize-recover=undefined
LDLIBS	:= -lmnl -lbpf -lm

LIB_SRC	:= $(wildcard userspace/lib/*.c)
CTL_SRC	:= $(wildcard userspace/batonctl/*.c)
KVD_SRC	:= $(wildcard userspace/examples/kvd/*.c)
BENCH_SRC := $(wildcard userspace/bench/*.c)
SKEL	:= $(B)/bpf/baton_steer.skel.h
HDRS	:= $(wildcard userspace/include/*.h userspace/lib/*.h \
		userspace/examples/kvd/*.h userspace/bench/*.h \
		userspace/batonctl/*.h bpf/*.h) $(SKEL)

# Two builds: bin/ for use, asan/ for the tests
BIN	:= $(B)/bin
ASAN	:= $(B)/asan
PROGS	:= batonctl kvd-v1 kvd-v2 baton-bench

all: $(addprefix $(BIN)/,$(PROGS))

define build_tree # $(1): output dir, $(2): extra flags
$(1)/obj/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -c $$< -o $$@

$(1)/libbaton.a: $(LIB_SRC:%.c=$(1)/obj/%.o)
	@$(if $(Q),echo "  AR      $$@")
	$(Q)ar rcs $$@ $$^

$(1)/batonctl: $(CTL_SRC:%.c=$(1)/obj/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) -o $$@ $$^ $(LDLIBS)

$(1)/baton-bench: $(BENCH_SRC:%.c=$(1)/obj/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) -o $$@ $$^ $(LDLIBS)

$(1)/kvd-v1: $(KVD_SRC:%.c=$(1)/obj/v1/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) -o $$@ $$^ $(LDLIBS)

$(1)/kvd-v2: $(KVD_SRC:%.c=$(1)/obj/v2/%.o) $(1)/libbaton.a
	@$(if $(Q),echo "  LD      $$@")
	$(Q)$(CC) $(2) -o $$@ $$^ $(LDLIBS)

$(1)/obj/v1/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -DKVD_VERSION=1 -c $$< -o $$@

$(1)/obj/v2/%.o: %.c $(HDRS)
	@mkdir -p $$(dir $$@)
	@$(if $(Q),echo "  CC      $$@")
	$(Q)$(CC) $(CFLAGS) $(2) -DKVD_VERSION=2 -c $$< -o $$@
endef

# The steering program, and the skeleton libbaton loads it with
BPF_CFLAGS := -g -O2 -target bpf -Wall -Werror -Ibpf \
	      -I/usr/include/$(shell $(CC) -dumpmachine)

$(B)/bpf/%.bpf.o: bpf/%.bpf.c bpf/%.h
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  BPF     $@")
	$(Q)clang $(BPF_CFLAGS) -c $< -o $@

$(B)/bpf/%.skel.h: $(B)/bpf/%.bpf.o
	@$(if $(Q),echo "  GEN     $@")
	$(Q)bpftool gen skeleton $< name $(subst -,_,$*)_bpf > $@.tmp && mv $@.tmp $@

.SECONDARY: $(B)/bpf/baton_steer.bpf.o $(SKEL)

$(eval $(call build_tree,$(BIN),))
$(eval $(call build_tree,$(ASAN),$(SANFLAGS)))

deps:
	$(Q)bash scripts/deps.sh

# Kbuild (top level) and module/Kbuild; the objects land beside the sources
KREL	= $(shell bash scripts/kernel-release.sh)
KDIR	= /lib/modules/$(KREL)/build

module:
	$(Q)test -d $(KDIR) || { echo "no kernel headers in $(KDIR): run 'make deps'"; exit 1; }
	$(Q)$(MAKE) --no-print-directory -C $(KDIR) M=$(CURDIR) W=1 modules $(if $(Q),>/dev/null)
	@$(if $(Q),echo "  KMOD    module/baton.ko")

demo: deps all
	$(Q)bash scripts/demo.sh

# the YAML spec of the module's family against its UAPI header; module_test
# compares it with the kernel's policy
spec:
	$(Q)python3 scripts/genl_spec.py check \
		Documentation/netlink/specs/baton.yaml include/uapi

check: deps spec
	$(Q)$(MAKE) --no-print-directory all module $(addprefix $(ASAN)/,$(PROGS))
	$(Q)$(MAKE) --no-print-directory -C selftests run \
		BATON_BIN=$(abspath $(ASAN))

bench: deps all
	$(Q)bash scripts/bench.sh

clean:
	$(Q)rm -rf $(B)
	$(Q)if [ -d $(KDIR) ]; then $(MAKE) --no-print-directory -C $(KDIR) M=$(CURDIR) clean >/dev/null; fi
	$(Q)$(MAKE) --no-print-directory -C selftests clean

.PHONY: all deps module spec demo check bench clean
