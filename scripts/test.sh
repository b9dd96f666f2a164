#!/bin/sh
# Set up this machine (Debian packages, .venv) and run the whole test suite, as root:
#   lane 1 (background): the real-VM lane, two Debian VMs under qemu (tests/vm),
#           then the static checks (ansible-lint, ansible-test sanity, galaxy
#           build), which make no kernel objects and fit in the VM lane's slack;
#   lane 2: unit tests, integration targets, Molecule scenarios and the reliability
#           suite on simulated hosts, the classroom tests.
# The two lanes run side by side to keep CI short; lane 2's leak checks ignore what
# lane 1 owns (its netns ndl-vmnet, qemu, /var/lib/nodocker-lab-vm), and lane 1
# checks its own leftovers when it tears its VMs down. Extra arguments go to lane 2's
# pytest. NODOCKER_SKIP_VM=1 skips lane 1.
set -u
cd "$(dirname "$0")/.." || exit 1
./scripts/setup.sh || exit 1
export PATH="$PWD/.venv/bin:$PATH"
logdir=$(mktemp -d /tmp/nodocker-lab-test.XXXXXX)
# The whole run's leak check (nothing ignored): the machine before both lanes...
python tests/lib/leakcheck.py snapshot "$logdir/machine-before.json" || exit 1

vm_pid=""
lane1=""
[ "${NODOCKER_SKIP_VM:-0}" != 1 ] && [ -d tests/vm ] && lane1="tests/vm"
if [ -n "$lane1" ]; then
    # one pytest session per part, so that each reports its own summary line
    { python -m pytest tests/vm -m vm; vm_rc=$?
      python -m pytest tests/static; st_rc=$?
      [ "$vm_rc" -eq 0 ] && [ "$st_rc" -eq 0 ]; } > "$logdir/vm.log" 2>&1 &
    vm_pid=$!
    echo "lane 1 (real VMs, then static checks) started in the background, log: $logdir/vm.log"
fi

# Lane 2's leak checks ignore what lane 1 owns: its netns ndl-vmnet, qemu,
# /var/lib/nodocker-lab-vm, and ansible-test's processes (their command lines
# name the collection).
export NODOCKER_LEAKCHECK_IGNORE="ndl-vm,nodocker-lab-vm,nodocker-lab/vm,qemu-system,/.ansible/test/,ansible-test"
paths="tests/unit"
[ -z "$lane1" ] && paths="$paths tests/static"
for d in tests/integration tests/reliability tests/classroom; do
    [ -d "$d" ] && paths="$paths $d"
done
# shellcheck disable=SC2086
{ python -m pytest $paths "$@"; echo $? > "$logdir/main.rc"; } 2>&1 | tee "$logdir/main.log"
main_rc=$(cat "$logdir/main.rc")

vm_rc=0
if [ -n "$vm_pid" ]; then
    wait "$vm_pid"; vm_rc=$?
    echo
    echo "================ lane 1: real VMs (tests/vm), static checks ================"
    cat "$logdir/vm.log"
fi

# One closing line for both lanes.
python - "$logdir/main.log" "$logdir/vm.log" <<'PY'
import os, re, sys
counts = {'passed': 0, 'failed': 0, 'skipped': 0, 'error': 0}
for path in sys.argv[1:]:
    if not os.path.exists(path):
        continue
    # one summary line per pytest session in the log (lane 1 runs two)
    lines = [l for l in open(path).read().splitlines() if re.match(r'^=+ .* in [0-9.]+s', l)]
    for line in lines:
        for n, what in re.findall(r'(\d+) (passed|failed|skipped|errors?)', line):
            counts['error' if what.startswith('error') else what] += int(n)
print('%d passed, %d failed, %d skipped' % (counts['passed'], counts['failed'] + counts['error'],
                                           counts['skipped']))
PY
# ... and after them: no namespace, link, mount, cgroup, process or qemu left by either.
echo
leak_rc=0
env -u NODOCKER_LEAKCHECK_IGNORE python tests/lib/leakcheck.py compare "$logdir/machine-before.json" || leak_rc=$?
[ "$main_rc" -eq 0 ] && [ "$vm_rc" -eq 0 ] && [ "$leak_rc" -eq 0 ]
