#!/usr/bin/env bash
# Compiles the spawn helper (src/host/spawn-helper.c) into dist/bin/crisp-spawn-helper when a C
# compiler is present (setup.sh installs one: g++ also builds node-pty). Without one the daemon
# runs the perl helper instead, which does the same at a higher cost per command.
set -euo pipefail
cd "$(dirname "$0")/.."
src=src/host/spawn-helper.c
out=dist/bin/crisp-spawn-helper
cc=$(command -v cc || command -v gcc || true)
if [[ -z $cc ]]; then
  echo "crisp build: no C compiler, so the daemon will use the perl spawn helper" >&2
  exit 0
fi
[[ -x $out && $out -nt $src ]] && exit 0
mkdir -p "$(dirname "$out")"
"$cc" -O2 -Wall -Wextra -Wno-missing-field-initializers -Werror -o "$out.tmp" "$src"
mv "$out.tmp" "$out"
