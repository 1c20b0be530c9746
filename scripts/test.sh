#!/usr/bin/env bash
# The one test command (`npm test`): installs the Debian packages the tests
# drive when missing (dcmtk; unzip checks the ZIP downloads), type-checks, runs jest, and ends with the plain
# "N passed, N failed" line CI reads. Chromium (Debian) drives the web UI
# tests (test/e2e/web-*.test.ts).
set -uo pipefail
cd "$(dirname "$0")/.."

need_apt=()
for bin in dcmdump:dcmtk storescu:dcmtk chromium:chromium unzip:unzip Orthanc:orthanc; do
  command -v "${bin%%:*}" >/dev/null 2>&1 || need_apt+=("${bin##*:}")
done
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "installing Debian packages: ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# npm puts node_modules/.bin (Node 22 from the `node` package) first on PATH.
counts=$(mktemp)
typecheck_failed=0
if ! tsc --noEmit -p tsconfig.json; then
  echo "type check failed"
  typecheck_failed=1
fi
TEST_COUNT_FILE="$counts" jest --ci "$@"
jest_rc=$?

passed=0; failed=0
if [ -s "$counts" ]; then
  read -r passed failed < <(node -e "const c=JSON.parse(require('fs').readFileSync(process.argv[1],'utf8')); console.log(c.passed, c.failed)" "$counts")
fi
rm -f "$counts"
failed=$((failed + typecheck_failed))
echo "${passed} passed, ${failed} failed"
if [ "$jest_rc" -ne 0 ] || [ "$typecheck_failed" -ne 0 ] || [ "$passed" -eq 0 ]; then exit 1; fi
