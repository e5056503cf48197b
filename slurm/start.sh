#!/usr/bin/env bash
# Start the single-host SLURM test cluster with all its state under DIR:
#   munged, MariaDB + slurmdbd (accounting, so `sacct` works), slurmctld, and one slurmd per node
#   (localhost -> partition `debug`; n1, n2 -> partition `multi`).
# Usage: slurm/start.sh [DIR]        (default: <repo>/.slurm-testbed; needs root, nothing under /etc is touched)
# Any daemons of an earlier (crashed) run in DIR are stopped first and its leftover jobs cancelled, so this is
# also "restart" (accounting history and job ids carry on).
# Prints the daemons' PIDs and the start time; then `source slurm/env.sh DIR` points the clients here.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="$(realpath -m "${1:-$HERE/../.slurm-testbed}")"
NODES=(localhost n1 n2)
START_TIMEOUT_S=${START_TIMEOUT_S:-90}
T0=$(date +%s.%N)

die() { echo "start.sh: $*" >&2; exit 1; }
show_log() { [ -s "$1" ] && { echo "--- last lines of $1:" >&2; tail -n 20 "$1" >&2; }; return 0; }
# wait_until SECONDS WHAT COMMAND...: poll COMMAND every 0.1 s until it succeeds
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$(( $(date +%s) + limit ))
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "start.sh: timed out after ${limit}s waiting for $what" >&2; return 1; }
    sleep 0.1
  done
}

[ "$(id -u)" = 0 ] || die "must run as root (the daemons run as root, munged as user munge, MariaDB as mysql)"
for exe in /usr/sbin/munged /usr/sbin/mariadbd /usr/sbin/slurmdbd /usr/sbin/slurmctld /usr/sbin/slurmd; do
  [ -x "$exe" ] || die "$exe not found; install the Debian packages with: bash $HERE/install.sh"
done
unshare -m true 2>/dev/null \
  || die "cannot create a mount namespace (unshare -m); a container needs CAP_SYS_ADMIN (docker run --privileged)"
# munged's and MariaDB's unix sockets live under DIR, and socket paths are limited to 107 bytes
[ ${#DIR} -le 80 ] || die "DIR is ${#DIR} characters long; use a path of at most 80 (socket path limit)"
mkdir -p "$DIR"
chmod 0755 "$DIR"
# munged and MariaDB run as their own users and must be able to reach their files under DIR
for user in munge mysql; do
  setpriv --reuid="$user" --regid="$user" --clear-groups test -x "$DIR" \
    || die "user '$user' cannot enter $DIR (a parent folder is not world-executable); use a DIR under /tmp"
done

# 0. leftovers of an earlier run in DIR (daemons by PID, stale sockets and pid files)
bash "$HERE/stop.sh" "$DIR" >/dev/null
on_exit() { [ $? = 0 ] || { echo "start.sh: failed; stopping what was started" >&2; bash "$HERE/stop.sh" "$DIR" >&2; }; }
trap on_exit EXIT

M="$DIR/munge"; D="$DIR/mysql"; CONF="$DIR/etc/slurm.conf"
mkdir -p "$DIR/etc" "$DIR/log" "$DIR/run" "$DIR/state/ctld" "$M/etc" "$M/run" "$M/log" "$M/lib" "$D"
for n in "${NODES[@]}"; do mkdir -p "$DIR/state/d/$n"; done

# 1. configuration from the templates, with fresh free ports (several clusters may share the host)
read -r CTLD_PORT SLURMD_PORT N1_PORT N2_PORT DBD_PORT DB_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(6)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
render() {
  sed -e "s|@DIR@|$DIR|g" -e "s|@CTLD_PORT@|$CTLD_PORT|g" -e "s|@SLURMD_PORT@|$SLURMD_PORT|g" \
      -e "s|@N1_PORT@|$N1_PORT|g" -e "s|@N2_PORT@|$N2_PORT|g" -e "s|@DBD_PORT@|$DBD_PORT|g" \
      -e "s|@DB_PORT@|$DB_PORT|g" "$HERE/templates/$1" > "$2"
}
render slurm.conf "$CONF"
render slurmdbd.conf "$DIR/etc/slurmdbd.conf"
render my.cnf "$DIR/etc/my.cnf"
chmod 0600 "$DIR/etc/slurmdbd.conf"
chmod 0644 "$CONF" "$DIR/etc/my.cnf"
# /etc/hosts as seen by the slurmd daemons and their jobs only (bind-mounted in a private mount namespace)
{ cat /etc/hosts; echo "127.0.0.1 n1 n2"; } > "$DIR/etc/hosts"
export SLURM_CONF="$CONF"

# 2. munged, as user munge, with its own key
chown -R munge:munge "$M"
chmod 0700 "$M/etc" "$M/log" "$M/lib"
chmod 0755 "$M" "$M/run"
if [ ! -s "$M/etc/munge.key" ]; then
  mungekey --create --keyfile="$M/etc/munge.key" --bits=1024
  chown munge:munge "$M/etc/munge.key"
  chmod 0400 "$M/etc/munge.key"
fi
setpriv --reuid=munge --regid=munge --init-groups /usr/sbin/munged \
  --key-file="$M/etc/munge.key" --socket="$M/run/munge.socket.2" --pid-file="$M/run/munged.pid" \
  --log-file="$M/log/munged.log" --seed-file="$M/lib/munged.seed" \
  || { show_log "$M/log/munged.log"; die "munged did not start"; }
wait_until 10 "munged" sh -c "munge -S '$M/run/munge.socket.2' -n | unmunge -S '$M/run/munge.socket.2'"

# 3. MariaDB (datadir under DIR) with the slurm user for slurmdbd
chown mysql:mysql "$D"
if [ ! -d "$D/data/mysql" ]; then
  rm -rf "$D/data"
  mariadb-install-db --defaults-file="$DIR/etc/my.cnf" --user=mysql --auth-root-authentication-method=socket \
    --skip-test-db --skip-name-resolve > "$D/install_db.log" 2>&1 || { show_log "$D/install_db.log"; die "mariadb-install-db failed"; }
fi
setsid /usr/sbin/mariadbd --defaults-file="$DIR/etc/my.cnf" > "$D/stdout.log" 2>&1 < /dev/null &
wait_until 60 "MariaDB" mariadb --defaults-file="$DIR/etc/my.cnf" -e "select 1" \
  || { show_log "$D/mysqld.err"; die "MariaDB did not come up"; }
mariadb --defaults-file="$DIR/etc/my.cnf" -e "
  CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurmdbpass';
  CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurmdbpass';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  FLUSH PRIVILEGES;"

# 4. slurmdbd (finds slurmdbd.conf next to $SLURM_CONF), then register the cluster once
/usr/sbin/slurmdbd || { show_log "$DIR/log/slurmdbd.log"; die "slurmdbd did not start"; }
wait_until 60 "slurmdbd" sacctmgr -n list cluster || { show_log "$DIR/log/slurmdbd.log"; die "slurmdbd does not answer"; }
sacctmgr -n -P list cluster format=cluster | grep -qx emorl || sacctmgr -i add cluster emorl > /dev/null

# 5. slurmctld and one slurmd per node, each slurmd in a private mount namespace whose /etc/hosts also maps
#    n1 n2 -> 127.0.0.1 (jobs inherit it, so MASTER_ADDR=n1 resolves inside jobs; the host's /etc stays as is)
/usr/sbin/slurmctld -f "$CONF" || { show_log "$DIR/log/slurmctld.log"; die "slurmctld did not start"; }
wait_until 30 "slurmctld" scontrol ping || { show_log "$DIR/log/slurmctld.log"; die "slurmctld does not answer"; }
# the queue starts empty: cancel jobs that a crashed earlier run left behind (they would hold their nodes)
squeue -h -o %A | xargs -r scancel
for n in "${NODES[@]}"; do
  unshare -m sh -c "mount --bind '$DIR/etc/hosts' /etc/hosts && exec /usr/sbin/slurmd -f '$CONF' -N $n" \
    || { show_log "$DIR/log/slurmd-$n.log"; die "slurmd -N $n did not start"; }
done

all_idle() { [ "$(sinfo -h -N -o %t | sort -u | tr -d '\n')" = idle ]; }
wait_until "$START_TIMEOUT_S" "all nodes idle" all_idle \
  || { sinfo -N >&2 || true; show_log "$DIR/log/slurmctld.log"; die "nodes did not become idle"; }

sinfo
pids="munged=$(cat "$M/run/munged.pid") mariadbd=$(cat "$D/mysqld.pid") slurmdbd=$(cat "$DIR/run/slurmdbd.pid")"
pids+=" slurmctld=$(cat "$DIR/run/slurmctld.pid")"
for n in "${NODES[@]}"; do pids+=" slurmd-$n=$(cat "$DIR/run/slurmd-$n.pid")"; done
echo "PIDS $pids"
echo "SLURM_CONF=$CONF"
awk -v t0="$T0" -v t1="$(date +%s.%N)" 'BEGIN { printf "started in %.1f s\n", t1 - t0 }'
