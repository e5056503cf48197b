#!/usr/bin/env bash
# Install the Debian packages of the single-host SLURM test cluster: SLURM 22.05 (slurmctld, slurmd, clients),
# munge, slurmdbd + MariaDB for accounting (`sacct`; submitit needs it), and PostgreSQL for the lab tracking
# server's tests (tests/fixtures/postgres_server.py runs its own initdb + pg_ctl). Quick no-op when all are
# installed; `apt-get update` runs only when a package has no install candidate yet. Needs root (or sudo).
set -euo pipefail

PACKAGES=(slurm-wlm munge slurmdbd mariadb-server postgresql)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} = 0 ]; then
  echo "install.sh: already installed: ${PACKAGES[*]}"
  exit 0
fi
for p in "${missing[@]}"; do
  has_candidate "$p" || { $SUDO apt-get update; break; }
done
# system services these packages may start are not used: slurm/start.sh runs its own daemons on free ports
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
