#!/usr/bin/env bash
# Installs what crisp needs on a Debian machine that has only Node.js, and nothing that is
# already there. `setup.sh runtime` is what `npm start` needs; `setup.sh test` adds what the
# tests use (a registry, busybox for fixture images, skopeo, tools the tests inspect with).
set -euo pipefail
cd "$(dirname "$0")/.."

# make, g++ and python3 build node-pty (and better-sqlite3 when no prebuilt binary fits)
runtime_packages=(runc crun conmon containernetworking-plugins golang-github-containers-common iproute2 iptables util-linux mount attr zstd make g++ python3)
test_packages=(docker-registry busybox-static skopeo jq procps)

wanted=("${runtime_packages[@]}")
[[ "${1:-runtime}" == test ]] && wanted+=("${test_packages[@]}")

missing=()
for pkg in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "crisp setup: missing Debian packages (${missing[*]}); run as root to install them" >&2
    exit 1
  fi
  echo "crisp setup: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# npm dependencies, when absent or incomplete (better-sqlite3 and node-pty compile from source: ~60 s).
if ! npm ls --depth=0 >/dev/null 2>&1 || [[ ! -e node_modules/better-sqlite3/build/Release/better_sqlite3.node ]] ||
  [[ ! -e node_modules/node-pty/build/Release/pty.node ]]; then
  echo "crisp setup: installing npm dependencies" >&2
  npm ci --no-audit --no-fund
fi

# crun (the second runtime handler) refuses a hybrid cgroup host whose v2 hierarchy still holds a
# controller. On hybrid hosts systemd mounts a v1 hierarchy for every controller, which frees the v2
# one; where it did not (systemd is not PID 1 here), do the same. The daemon names this fix when
# a pod asks for crun on a host that still needs it.
unified=/sys/fs/cgroup/unified/cgroup.controllers
if [[ $(id -u) -eq 0 && -r $unified ]]; then
  for controller in $(cat "$unified"); do
    mkdir -p "/sys/fs/cgroup/$controller"
    mount -t cgroup -o "$controller" none "/sys/fs/cgroup/$controller" \
      || echo "crisp setup: could not mount a v1 $controller hierarchy; the crun handler will refuse pods" >&2
  done
fi

# Types for the CRI proto are generated, not committed.
npm run -s gen:proto

# The compiled spawn helper (the daemon falls back to perl without it); tests run from src/ and
# use it from dist/bin too.
bash scripts/build-spawn-helper.sh
