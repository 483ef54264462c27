# shellcheck shell=bash
# deploy/xenlab/lib.sh: what the lab's boot scripts share (sourced by
# deploy/xenlab/run.sh and deploy/xenlab-migrate.sh): the QEMU command that
# boots the lab's Xen 4.17 and Debian dom0 (built by ../shared/xenlab's
# build.sh), and the serial log's time stamps.
#
# The CPU model. QEMU's `-cpu max` under TCG (what ../shared/xenlab/run.sh
# uses) corrupts dom0 processes' memory under this Xen: with it, about a
# third of the one-host lab runs and nearly every two-host run lost dom0
# processes (segfaults and general protection faults in libc, ld.so,
# python3, libcrypto; README, "Xen lab"), also with Xen's own daemon. With
# `-cpu qemu64` (no AVX, PCID, FSGSBASE, SMEP/SMAP, XSAVE, ...) none was
# seen, and the lab boots faster. XSR_XENLAB_CPU overrides it (e.g. max).
#
# Environment: XSR_XENLAB_CPU (default qemu64), XSR_XENLAB_TCG_THREAD
# (single | multi), XSR_XENLAB_SMP (vCPUs), XSR_XENLAB_XEN_EXTRA (more
# options for Xen's command line). The callers set their own defaults for
# the last three before calling lab_qemu_cmd.

# lab_qemu_cmd ACCEL WORK DISK SHARE: the QEMU command line in LAB_QEMU
# (an array): Xen and dom0's kernel and initrd from WORK/out, dom0's disk
# DISK, SHARE (if not empty) as dom0's /mnt/host over 9p. The caller adds
# its devices (a NIC) and runs it.
lab_qemu_cmd() {
  local accel=$1 w=$2 disk=$3 share=$4 acc
  case $accel in
    kvm) acc=(-accel kvm -cpu "${XSR_XENLAB_CPU:-host,-arch-capabilities}");;
    *) acc=(-accel "tcg,thread=${XSR_XENLAB_TCG_THREAD:-multi}" -cpu "${XSR_XENLAB_CPU:-qemu64}");;
  esac
  # shellcheck disable=SC2054 # the commas are QEMU's
  LAB_QEMU=(qemu-system-x86_64 "${acc[@]}" -machine q35 -smp "${XSR_XENLAB_SMP:-2}" -m 2048
    -display none -monitor none -no-reboot -serial stdio
    -kernel "$w/out/xen-4.17.elf"
    # smap=0 smep=0: with a CPU model that has them, Xen's PV dom0 dies
    # early under TCG without (../shared/xenlab/README.md)
    -append "console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M loglvl=all guest_loglvl=all smap=0 smep=0${XSR_XENLAB_XEN_EXTRA:+ $XSR_XENLAB_XEN_EXTRA}"
    # in -initrd a comma separates boot modules
    -initrd "$w/out/vmlinuz root=/dev/vda rw console=hvc0 earlyprintk=xen init=/sbin/xenlab-init,$w/out/initrd.img"
    -drive "file=$disk,if=virtio,format=raw,cache=unsafe"
    -device isa-debug-exit,iobase=0xf4,iosize=0x04)
  [ -z "$share" ] ||
    LAB_QEMU+=(-virtfs "local,path=$share,mount_tag=hostshare,security_model=none,id=hostshare")
}

# lab_stamp: each line of stdin prefixed with the seconds since it started
lab_stamp() {
  local s=${EPOCHREALTIME/./} t d l
  while IFS= read -r l; do
    t=${EPOCHREALTIME/./}; d=$(( (t - s) / 10000 ))
    printf '[%4d.%02d] %s\n' $((d / 100)) $((d % 100)) "${l%$'\r'}"
  done
}
