#!/usr/bin/env bash
# Stop the test cluster started by `slurm/start.sh DIR`: every daemon by the PID in its pid file, with its whole
# process tree, in reverse start order, after any job step (slurmstepd) still running for this DIR.
# A PID is only signalled when the process still belongs to DIR (its command line or environment names DIR),
# so stale pid files of a crashed run never hit an unrelated process. Safe to run when nothing is running.
# Usage: slurm/stop.sh [DIR]        (default: <repo>/.slurm-testbed)
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="$(realpath -m "${1:-$HERE/../.slurm-testbed}")"
GRACE_S=${GRACE_S:-10}
T0=$(date +%s.%N)

# belongs_to_dir PID: the process is alive and names DIR in its command line or environment
belongs_to_dir() {
  [ -r "/proc/$1/cmdline" ] || return 1
  tr '\0' '\n' 2>/dev/null < "/proc/$1/cmdline" | grep -qF "$DIR/" && return 0
  tr '\0' '\n' 2>/dev/null < "/proc/$1/environ" | grep -qF "$DIR/"
}
# tree PID: PID's descendants (deepest first), then PID
tree() {
  local child
  for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree "$child"; done
  echo "$1"
}
alive() { kill -0 "$1" 2>/dev/null && [ "$(ps -o stat= -p "$1" 2>/dev/null | cut -c1)" != Z ]; }
# stop_tree NAME PID [SIGNAL]: send SIGNAL (default TERM) to the tree, wait up to GRACE_S, then SIGKILL the rest
stop_tree() {
  local name=$1 pids p left deadline t0
  t0=$(date +%s.%N)
  pids=$(tree "$2" | tr '\n' ' ')
  kill -"${3:-TERM}" $pids 2>/dev/null
  deadline=$(( $(date +%s) + GRACE_S ))
  while :; do
    left=""
    for p in $pids; do alive "$p" && left+="$p "; done
    [ -z "$left" ] && break
    if [ "$(date +%s)" -ge "$deadline" ]; then kill -KILL $left 2>/dev/null; sleep 0.2; break; fi
    sleep 0.1
  done
  echo "stopped $name: ${pids% } ($(awk -v t0="$t0" -v t1="$(date +%s.%N)" 'BEGIN { printf "%.1f", t1 - t0 }') s)"
}

# cancel the queue while slurmctld still answers, so jobs end as CANCELLED (in sacct) and free their nodes
ctld_pid=$(tr -dc 0-9 2>/dev/null < "$DIR/run/slurmctld.pid")
if [ -n "$ctld_pid" ] && belongs_to_dir "$ctld_pid" \
   && jobs=$(SLURM_CONF="$DIR/etc/slurm.conf" timeout 5 squeue -h -o %A) && [ -n "$jobs" ]; then
  SLURM_CONF="$DIR/etc/slurm.conf" scancel $jobs
  for _ in $(seq 50); do
    [ -z "$(SLURM_CONF="$DIR/etc/slurm.conf" timeout 5 squeue -h -o %A)" ] && break
    sleep 0.2
  done
  echo "cancelled jobs:" $jobs
fi
# then job steps still alive (after a crash): they outlive slurmd (slurmstepd is re-parented away from it) and
# inherit SLURM_CONF=DIR/etc/slurm.conf from it; slurmstepd ignores SIGTERM, and its job is lost anyway: SIGKILL
for pid in $(pgrep -x slurmstepd); do
  belongs_to_dir "$pid" && stop_tree "slurmstepd" "$pid" KILL
done
for pidfile in "$DIR"/run/slurmd-*.pid "$DIR/run/slurmctld.pid" "$DIR/run/slurmdbd.pid" \
               "$DIR/mysql/mysqld.pid" "$DIR/munge/run/munged.pid"; do
  [ -s "$pidfile" ] || continue
  pid=$(tr -dc 0-9 < "$pidfile")
  if [ -n "$pid" ] && belongs_to_dir "$pid"; then stop_tree "$(basename "$pidfile" .pid)" "$pid"; fi
  rm -f "$pidfile"
done
rm -f "$DIR/munge/run/munge.socket.2" "$DIR/munge/run/munge.socket.2.lock" "$DIR/mysql/mysqld.sock"
awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "stopped in %.1f s\n", t1 - t0 }'
