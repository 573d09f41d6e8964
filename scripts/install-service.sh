#!/usr/bin/env bash
# `npm run install-service` (as root): builds crisp and installs it as a node service.
#   PREFIX/lib/crisp       the compiled daemon, its production dependencies and data files
#   PREFIX/bin/crisp       the `crisp` command
#   SYSCONFDIR/crisp/crisp.conf   every key, commented out (defaults apply), unless it exists
#   UNITDIR/crisp.service  the systemd unit
# Where systemd is PID 1 it is then enabled and started. PREFIX (/usr/local), SYSCONFDIR (/etc)
# and UNITDIR (/etc/systemd/system) may be set in the environment, e.g. to try it in a scratch
# directory.
set -euo pipefail
cd "$(dirname "$0")/.."
PREFIX=${PREFIX:-/usr/local}
SYSCONFDIR=${SYSCONFDIR:-/etc}
UNITDIR=${UNITDIR:-/etc/systemd/system}

bash scripts/setup.sh runtime
npm run -s build

lib="$PREFIX/lib/crisp"
staging="$lib.new-$$"
rm -rf "$staging"
mkdir -p "$staging/src/cri/proto/gen" "$PREFIX/bin"
cp -a dist migrations package.json package-lock.json README.md scripts/daemon-node-flags "$staging/"
cp -a src/cri/proto/api.proto "$staging/src/cri/proto/"
cp -a src/cri/proto/gen/api.json "$staging/src/cri/proto/gen/"
cp -a node_modules "$staging/"
(cd "$staging" && npm prune --omit=dev --offline --no-audit --no-fund >/dev/null)
if [[ -e "$lib" ]]; then mv "$lib" "$lib.old-$$"; fi
mv "$staging" "$lib"
rm -rf "$lib.old-$$"

cat > "$PREFIX/bin/crisp" <<WRAPPER
#!/bin/sh
# The installed crisp; node flags as npm start uses them (see $lib/daemon-node-flags).
exec node \$(cat '$lib/daemon-node-flags') '$lib/dist/src/cli/main.js' "\$@"
WRAPPER
chmod 755 "$PREFIX/bin/crisp"

conf="$SYSCONFDIR/crisp/crisp.conf"
if [[ ! -e "$conf" ]]; then
  mkdir -p "$(dirname "$conf")"
  cp contrib/crisp.conf "$conf"
  echo "crisp: wrote $conf (every key commented out: the defaults apply)"
fi

mkdir -p "$UNITDIR"
sed -e "s|@PREFIX@|$PREFIX|g" -e "s|@SYSCONFDIR@|$SYSCONFDIR|g" contrib/systemd/crisp.service.in > "$UNITDIR/crisp.service"
echo "crisp: installed $PREFIX/bin/crisp and $UNITDIR/crisp.service"

if [[ -d /run/systemd/system && "$UNITDIR" == /etc/systemd/system ]]; then
  systemctl daemon-reload
  systemctl enable --now crisp.service
  echo "crisp: crisp.service is enabled and started"
else
  echo "crisp: systemd is not running as PID 1 here; start the daemon with: $PREFIX/bin/crisp daemon --config $conf"
fi
