# The harnesses, for fuzz/Makefile and selftests/Makefile alike: on the
# host, and in the VM (scripts/vm.sh) with baton.ko loaded.
HOST_HARNESSES	:= msg records checkpoint ckptfile
VM_HARNESSES	:= genl
