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
    # Some packages (docker-registry, etcd-server) start a service on install:
    # forbid that for the duration of the install (policy-rc.d exit 101), the
    # tests start their own copies inside simulated hosts.
    policy=/usr/sbin/policy-rc.d
    saved=""
    if [ -e "$policy" ]; then saved=$(mktemp); cp -p "$policy" "$saved"; fi
    printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod 755 "$policy"
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $missing >/dev/null || rc=$?
    if [ -n "$saved" ]; then mv "$saved" "$policy"; else rm -f "$policy"; fi
    [ "${rc:-0}" -eq 0 ] || { echo "setup: apt-get install failed" >&2; exit 1; }
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
