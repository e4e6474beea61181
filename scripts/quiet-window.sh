#!/bin/bash
# Runs a benchmark command in a "quiet window" on a shared machine:
#   scripts/quiet-window.sh COMMAND...
# Takes a lock (one measurement at a time), pauses the process groups whose ids are listed in the
# file $QUIET_PAUSE_PGIDS (SIGSTOP; e.g. long `alspec eval` jobs started with setsid), waits up to
# 120 s (10 s under SCHED_FIFO, below) until the CPUs are >= 85% idle over 2 s, runs COMMAND, then resumes the paused groups.
# Keep COMMAND short (minutes): paused jobs make no progress meanwhile.
# Where the scheduler allows it (root, or CAP_SYS_NICE), COMMAND runs under SCHED_FIFO
# (`chrt -f 10`): other tenants' processes, which the pause list cannot know, then only run when
# it leaves a core idle (the kernel keeps 5% for them). QUIET_RT=0 turns this off.
exec 9>"${QUIET_LOCK:-/tmp/alspec-quiet.lock}"
flock 9
pgids=""
[ -n "${QUIET_PAUSE_PGIDS:-}" ] && [ -f "$QUIET_PAUSE_PGIDS" ] && pgids=$(cat "$QUIET_PAUSE_PGIDS")
for g in $pgids; do kill -STOP -- "-$g" 2>/dev/null; done
trap 'for g in $pgids; do kill -CONT -- "-$g" 2>/dev/null; done' EXIT
idle() {
  read -r _ u n s i w q sq st _ < /proc/stat; local t1=$((u + n + s + i + w + q + sq + st)) i1=$i
  sleep 2
  read -r _ u n s i w q sq st _ < /proc/stat; local t2=$((u + n + s + i + w + q + sq + st))
  echo $((100 * (i - i1) / (t2 - t1)))
}
rt=()
if [ "${QUIET_RT:-1}" != 0 ] && chrt -f 10 true 2>/dev/null; then rt=(chrt -f 10); fi
# Under SCHED_FIFO the wait matters less: 10 s at most instead of 120 s.
tries=60
[ ${#rt[@]} -gt 0 ] && tries=5
v=0
for _ in $(seq "$tries"); do v=$(idle); [ "$v" -ge 85 ] && break; done
echo "[quiet-window] idle ${v}% at $(date +%T), load: $(cut -d' ' -f1-3 /proc/loadavg)${rt:+, SCHED_FIFO}" >&2
"${rt[@]}" "$@"
