#!/bin/bash
# Runs a benchmark command in a "quiet window" on a shared machine:
#   scripts/quiet-window.sh COMMAND...
# Takes a lock (one measurement at a time), pauses the process groups whose ids are listed in the
# file $QUIET_PAUSE_PGIDS (SIGSTOP; e.g. long `alspec eval` jobs started with setsid), waits up to
# 120 s until the CPUs are >= 85% idle over 2 s, runs COMMAND, then resumes the paused groups.
# Keep COMMAND short (minutes): paused jobs make no progress meanwhile.
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
v=0
for _ in $(seq 60); do v=$(idle); [ "$v" -ge 85 ] && break; done
echo "[quiet-window] idle ${v}% at $(date +%T), load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$@"
