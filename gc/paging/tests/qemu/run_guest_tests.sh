#!/usr/bin/env bash
# paging.qemu_linux61: run the paging tests on Debian's Linux 6.1 under QEMU TCG.
#
# This host's kernel never sets soft-dirty bits, so here the softdirty backend can only be
# shown to refuse. Debian's 6.1 kernel (installed as linux-image-amd64) does track
# soft-dirty, and it predates UFFD_FEATURE_WP_ASYNC (6.7): booted under TCG it runs every
# softdirty test for real and shows both uffd backends refusing with the reason.
#
# usage: run_guest_tests.sh STATIC_PAGING_TEST
set -euo pipefail
test_bin=$1
kernel=$(ls /boot/vmlinuz-6.1.*-amd64 2>/dev/null | sort -V | tail -1 || true)
for need in qemu-system-x86_64 cpio gzip; do
  command -v "$need" >/dev/null || { echo "SKIPPED: $need not installed (scripts/deps.sh)"; exit 0; }
done
[[ -n "$kernel" ]] || { echo "SKIPPED: no /boot/vmlinuz-6.1.*-amd64 (linux-image-amd64)"; exit 0; }
[[ -x /usr/bin/busybox ]] || { echo "SKIPPED: no /usr/bin/busybox (busybox-static)"; exit 0; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/root
mkdir -p "$root"/{bin,proc,sys,dev,tmp}
cp /usr/bin/busybox "$root/bin/busybox"
cp "$test_bin" "$root/paging_test"
# Everything softdirty, the registry (which prints each backend's verdict), and mprotect's
# DIRTY as a control that needs nothing new from the kernel. One process runs them all, so
# the seccomp case, which needs a process whose probes have not run yet, stays out.
filter='*/softdirty:Registry.*:PageBitmapTest.*:Backends/Dirty.ReportsExactlyTheWrittenPages/mprotect'
filter+=':-Registry.UffdIsRefusedWhereUserfaultfdIsForbidden'
cat >"$root/init" <<INIT
#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev
echo "guest kernel: \$(/bin/busybox uname -r)"
cd /tmp
/paging_test --gtest_color=no --gtest_filter='$filter'
echo "GUEST-EXIT: \$?"
/bin/busybox poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$work/initrd.gz"

echo "booting $kernel under QEMU TCG"
timeout 400 qemu-system-x86_64 -accel tcg -cpu max -smp 1 -m 512M -nographic -no-reboot \
  -kernel "$kernel" -initrd "$work/initrd.gz" \
  -append "console=ttyS0 rdinit=/init panic=-1 quiet" </dev/null >"$work/console.log" 2>&1 || true
tr -d '\r' <"$work/console.log" | grep -v '^\s*$' | sed -n '/guest kernel/,$p' >"$work/guest.log" || true
# Shown with gtest's skip marker reworded: ctest would read it as this whole test skipped.
sed 's/\[  SKIPPED \]/[ (skipped)]/' "$work/guest.log"

fail() { echo "FAILED: $*"; exit 1; }
grep -q "^GUEST-EXIT: 0$" "$work/guest.log" || fail "the guest test run did not pass (see above)"
grep -q "backend softdirty: supported" "$work/guest.log" || fail "softdirty was not supported on 6.1"
grep -q "backend uffd: unsupported: .*lacks UFFD_FEATURE_WP_ASYNC" "$work/guest.log" ||
  fail "uffd did not refuse with the missing feature"
# Cases may skip for a feature softdirty lacks ("softdirty lacks trap"), never because the
# backend itself was refused.
if grep -q "backend softdirty is unsupported here" "$work/guest.log"; then
  fail "softdirty cases were skipped as unsupported on 6.1"
fi
ran=$(grep -c "OK \].*/softdirty" "$work/guest.log" || true)
echo "paging.qemu_linux61: ok ($ran softdirty cases passed on Linux 6.1)"
