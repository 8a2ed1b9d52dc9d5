#!/bin/busybox sh
# /init of the dunegc QEMU test guest (copied into every initramfs by qemu_harness.py).
#
# Loads the modules listed in /dunegc/modules.list, runs each line of /dunegc/commands with
# `sh -c` in /tmp, and powers off. Progress markers go to ttyS1 -- a serial port nothing
# else writes to, so kernel messages can never garble them -- and, for people reading the
# console log, to ttyS0 as well. Marker lines:
#   DUNEQEMU BOOTED <uptime>     DUNEQEMU MODULE <file> rc=<n>
#   DUNEQEMU BEGIN <i>           DUNEQEMU END <i> rc=<n>
#   DUNEQEMU DONE
/bin/busybox --install -s /bin
export PATH=/dunegc/bin:/bin HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm

mark() {
  echo "DUNEQEMU $*" >/dev/ttyS1
  echo "DUNEQEMU $*"
}
finish() {
  mark DONE
  sync
  poweroff -f
}

mark BOOTED "$(cut -d' ' -f1 /proc/uptime)"
# A task stuck in D state for 20 s is reported (and fails the test) well before the
# harness's wall-clock limit would hide it behind a plain timeout.
[ -w /proc/sys/kernel/hung_task_timeout_secs ] && echo 20 >/proc/sys/kernel/hung_task_timeout_secs

while read -r mod; do
  [ -n "$mod" ] || continue
  insmod "/dunegc/modules/$mod"
  rc=$?
  mark MODULE "$mod" rc=$rc
  [ $rc -eq 0 ] || finish
done </dunegc/modules.list

i=0
while IFS= read -r cmd; do
  i=$((i + 1))
  mark BEGIN $i
  (cd /tmp && sh -c "$cmd") </dev/null
  rc=$?
  mark END $i rc=$rc
done </dunegc/commands
finish
