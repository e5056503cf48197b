#!/usr/bin/env bash
# Install pdflatex with booktabs (Debian's texlive base and recommended packages): the test that compiles the
# generated LaTeX tables needs it. Quick no-op when installed (scripts/apt_install.sh).
set -euo pipefail
exec bash "$(dirname "$0")/apt_install.sh" --no-recommends texlive-latex-base texlive-latex-recommended
