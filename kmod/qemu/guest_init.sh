#!/bin/busybox sh
# /init of the dunegc QEMU test guest (copied into every initramfs by qemu_harness.py).
#
# Loads the modules listed in /dunegc/modules.list, runs each line of /dunegc/commands with
# `sh -c` in /tmp, and powers off. Progress markers go to ttyS1 -- a serial port nothing
# else writes to, so kernel messages can never garble them -- and, for people reading the
# console log, to ttyS0 as well. Marker lines:
#   DUNEQEMU BOOTED <uptime>     DUNEQEMU MODULE <file> rc=<n>
#   DUNEQEMU BEGIN <i>           DUNEQEMU END <i> rc=<n>
#   DUNEQEMU FILE <name> <bytes>, its base64 lines, DUNEQEMU FILEEND <name>   (ttyS1 only)
#   DUNEQEMU DONE
# Commands write result files to $DUNEGC_OUT (/dunegc/out); after the last command each
# regular file there is sent base64 on ttyS1, where qemu_harness.py --output-dir finds it.
# Each command runs in its own session, under a watchdog (/dunegc/command_timeout).
/bin/busybox --install -s /bin
export PATH=/dunegc/bin:/bin HOME=/tmp DUNEGC_OUT=/dunegc/out
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm

# Held open for the whole run: reopening the port for each marker lost some of them.
exec 9>/dev/ttyS1
mark() {
  echo "DUNEQEMU $*" >&9
  echo "DUNEQEMU $*"
}
finish() {
  mark DONE
  sync
  poweroff -f
}

mkdir -p "$DUNEGC_OUT"
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

# A command still running after the per-command limit gets its tasks' states and kernel
# stacks printed (what a hang looks like from the inside), then is killed (rc 137).
limit=$(cat /dunegc/command_timeout)
diagnose() {
  echo "DUNEQEMU command $1 still running after ${limit}s: tasks and kernel stacks"
  for d in /proc/[0-9]*; do
    cmd=$(tr '\0' ' ' <"$d/cmdline" 2>/dev/null)
    [ -n "$cmd" ] || continue # kernel threads
    echo "--- pid ${d#/proc/}: $cmd"
    for t in "$d"/task/[0-9]*; do # every thread: a hang is often not in the main one
      echo "-- tid ${t##*/}"
      grep -E '^(State|SigPnd|ShdPnd|SigBlk|SigCgt)' "$t/status"
      cat "$t/stack" 2>/dev/null
    done
  done
}
# The command runs in the foreground (a background job would start with SIGINT and SIGQUIT
# ignored), in a session of its own whose id the watchdog reads from /run/dunegc.sid.
watchdog() {
  trap 'kill $nap 2>/dev/null; exit 0' TERM
  sleep "$limit" &
  nap=$!
  wait $nap || exit 0
  diagnose $1
  kill -9 -"$(cat /run/dunegc.sid)"
}
mkdir -p /run
i=0
while IFS= read -r cmd; do
  i=$((i + 1))
  mark BEGIN $i
  rm -f /run/dunegc.sid
  watchdog $i &
  wd=$!
  (cd /tmp && exec setsid sh -c 'echo $$ >/run/dunegc.sid && exec sh -c "$0"' "$cmd") </dev/null 9>&-
  rc=$?
  kill $wd 2>/dev/null
  wait $wd 2>/dev/null
  mark END $i rc=$rc
done </dunegc/commands
for f in "$DUNEGC_OUT"/*; do
  [ -f "$f" ] || continue
  name=${f##*/}
  echo "DUNEQEMU FILE $name $(wc -c <"$f")" >&9
  base64 "$f" >&9
  echo "DUNEQEMU FILEEND $name" >&9
done
finish
