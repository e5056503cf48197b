#!/usr/bin/env bash
# Install Debian packages that are not installed yet: apt_install.sh [--no-recommends] PACKAGE...
# Quick no-op when all are installed; `apt-get update` runs only when a package has no install candidate yet.
# Needs root (or sudo). slurm/install.sh and scripts/install_latex.sh name their packages and call this.
set -euo pipefail

OPTIONS=()
if [ "${1:-}" = --no-recommends ]; then
  OPTIONS+=(--no-install-recommends)
  shift
fi
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

missing=()
for p in "$@"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} = 0 ]; then
  echo "$(basename "$0"): already installed: $*"
  exit 0
fi
for p in "${missing[@]}"; do
  has_candidate "$p" || { $SUDO apt-get update; break; }
done
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y "${OPTIONS[@]}" "${missing[@]}"
