#!/usr/bin/env bash
# Kordon's test command: sets up a fresh Debian machine (system packages, a venv, the
# package with its test extras), then runs pytest. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

# Real servers for the tests: Mosquitto and InfluxDB 1.x from Debian, mosquitto_sub for
# the benchmarks, python3-venv for the virtual environment, docker-compose to validate the
# compose file offline, chromium for the browser test of the operations page (Playwright
# drives it; no browser is ever downloaded), nut-server for a real upsd and dummy-ups behind
# the NUT bridge's tests, prometheus-alertmanager (0.25, with amtool) for a real two-node
# Alertmanager cluster behind the `alertmanager` receiver and to check deploy/alertmanager.yml.
PACKAGES="mosquitto mosquitto-clients influxdb python3-venv docker-compose chromium nut-server prometheus-alertmanager"
missing=""
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
        || missing="$missing $package"
done
if [ -n "$missing" ]; then
    echo "== installing system packages:$missing"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends $missing
fi

if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    python3 -m venv .venv
fi
echo "== installing kordon with its test extras"
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'

echo "== ruff"
.venv/bin/ruff check .

# The tests wait on real servers far more than they compute, so more workers than cores
# finish sooner; each worker starts its own broker and database (tests/conftest.py) and takes
# ports from a block of its own (testkit/servers.py). KORDON_TEST_WORKERS=0 runs in one process.
WORKERS="${KORDON_TEST_WORKERS:-4}"
if [ "$WORKERS" = "0" ]; then
    echo "== pytest (one process)"
    exec .venv/bin/python -m pytest "$@"
fi
# Both pytest runs share the verify answers of the library scenarios (testkit/verified.py),
# each computed once: the code does not change between them.
KORDON_VERIFIED_DIR="$(mktemp -d)"
export KORDON_VERIFIED_DIR
trap 'rm -rf "$KORDON_VERIFIED_DIR"' EXIT
# Tests marked `exclusive` (timing under faults that a starved host would distort) run first,
# alone; pytest's exit 5 there only means none of them was selected.
echo "== pytest: the exclusive tests, alone"
status=0
.venv/bin/python -m pytest -m exclusive "$@" || status=$?
if [ "$status" -ne 0 ] && [ "$status" -ne 5 ]; then
    exit "$status"
fi
first=$status
echo "== pytest: everything else ($WORKERS workers)"
status=0
.venv/bin/python -m pytest -n "$WORKERS" --dist worksteal -m "not exclusive" "$@" || status=$?
if [ "$status" -eq 5 ] && [ "$first" -eq 0 ]; then
    exit 0  # the arguments selected exclusive tests only, and they passed
fi
exit "$status"
