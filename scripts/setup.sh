#!/bin/sh
# Set up a fresh Debian/Ubuntu machine for nodocker.lab: the Debian packages
# the labs use, a Python virtualenv with the pinned requirements, and the
# collection link that lets playbooks in this checkout find nodocker.lab.*.
# Safe to run again: each step is skipped when already done.
set -eu
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

APT_PACKAGES="$(grep -v '^#' scripts/apt-packages.txt | tr '\n' ' ')"
missing=""
for p in $APT_PACKAGES; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
    echo "setup: installing Debian packages:$missing"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null
fi

PY=${PYTHON:-}
if [ -z "$PY" ]; then
    # The real interpreter, not a pyenv shim (shims add ~100 ms per start).
    for c in /root/.pyenv/versions/3.11*/bin/python3.11 /usr/local/bin/python3.11 /usr/bin/python3.11 /usr/bin/python3; do
        [ -x "$c" ] && { PY=$c; break; }
    done
fi
if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $PY"
    "$PY" -m venv .venv || { apt-get install -y -qq python3-venv >/dev/null; "$PY" -m venv .venv; }
fi
if ! cmp -s requirements.txt .venv/.requirements.installed; then
    echo "setup: installing Python requirements"
    .venv/bin/pip install -q --disable-pip-version-check -r requirements.txt
    cp requirements.txt .venv/.requirements.installed
fi

mkdir -p collections/ansible_collections/nodocker
[ -L collections/ansible_collections/nodocker/lab ] || ln -sfn ../../.. collections/ansible_collections/nodocker/lab
echo "setup: ready (.venv, collections/ansible_collections/nodocker/lab)"
