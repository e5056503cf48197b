#!/usr/bin/env bash
# Install pdflatex with booktabs (Debian's texlive base and recommended packages): the test that compiles the
# generated LaTeX tables needs it. Quick no-op when installed; `apt-get update` only when a package has no
# install candidate yet. Needs root (or sudo).
set -euo pipefail

PACKAGES=(texlive-latex-base texlive-latex-recommended)
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo

installed() { [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]; }
has_candidate() { apt-cache policy "$1" 2>/dev/null | grep -q 'Candidate: [^(]'; }

missing=()
for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
if [ ${#missing[@]} = 0 ]; then
  echo "install_latex.sh: already installed: ${PACKAGES[*]}"
  exit 0
fi
for p in "${missing[@]}"; do
  has_candidate "$p" || { $SUDO apt-get update; break; }
done
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
