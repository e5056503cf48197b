#!/usr/bin/env bash
# Install the Debian packages of the single-host SLURM test cluster: SLURM 22.05 (slurmctld, slurmd, clients),
# munge, slurmdbd + MariaDB for accounting (`sacct`; submitit needs it), and PostgreSQL for the lab tracking
# server's tests (tests/fixtures/postgres_server.py runs its own initdb + pg_ctl). Quick no-op when all are
# installed (scripts/apt_install.sh). System services these packages may start are not used: slurm/start.sh
# runs its own daemons on free ports.
set -euo pipefail
exec bash "$(dirname "$0")/../scripts/apt_install.sh" slurm-wlm munge slurmdbd mariadb-server postgresql
