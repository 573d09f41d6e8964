#!/usr/bin/env bash
# `npm test`: set up what the tests need, type-check and lint, then run unit and integration tests in
# one run of node's test runner (one summary for CI). Integration tests drive real runc,
# conmon, CNI plugins and a registry, so they need root; without it only unit tests run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh test
npx tsc --noEmit -p .
npm run -s lint
files=(test/unit/*.test.ts)
if [[ $(id -u) -eq 0 ]]; then
  files+=(test/integration/*.test.ts)
else
  echo "crisp test: not root, so integration tests (real runc, conmon, CNI, mounts) do not run here" >&2
fi
exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 "${files[@]}"
