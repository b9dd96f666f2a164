#!/bin/sh
# Set up this machine (Debian packages, .venv) and run the whole test suite:
# unit tests, static checks (ansible-lint, ansible-test sanity, galaxy build),
# integration targets and Molecule scenarios on simulated hosts, the classroom
# tests and the real-VM lane. Run as root. Extra arguments go to pytest.
set -eu
cd "$(dirname "$0")/.."
./scripts/setup.sh
export PATH="$PWD/.venv/bin:$PATH"
paths=""
for d in tests/unit tests/static tests/integration tests/classroom tests/vm; do
    [ -d "$d" ] && paths="$paths $d"
done
# shellcheck disable=SC2086
exec python -m pytest $paths "$@"
