#!/bin/sh
# Can this host run every chapter of the course? One line per check:
#   RESULT   CHECK                CHAPTERS  what it means
# RESULT is "ok" or "MISSING". Nothing here changes the host: the kernel
# features are tried inside throwaway namespaces (unshare) that vanish on exit.
# Usage: preflight.sh [ORDINARY_USER]
STUDENT=${1:-}
TMP=$(mktemp -d /tmp/nodocker-preflight.XXXXXX)
trap 'rm -rf "$TMP"' EXIT

printf '%-8s %-24s %-10s %s\n' RESULT CHECK CHAPTERS DETAILS
report() {  # report ok|MISSING check chapters text
    printf '%-8s %-24s %-10s %s\n' "$1" "$2" "$3" "$4"
}
check() {  # check NAME CHAPTERS "what is missing" COMMAND...
    name=$1; chapters=$2; missing=$3; shift 3
    if "$@" >"$TMP/out" 2>&1; then
        report ok "$name" "$chapters" "works"
    else
        report MISSING "$name" "$chapters" "$missing ($(head -c 160 "$TMP/out" | tr '\n' ' '))"
    fi
}
has() { command -v "$1" >/dev/null 2>&1; }

# tools
for t in ip bridge iptables unshare nsenter chroot pivot_root mount gcc busybox tcpdump ping ps stress-ng setfattr; do
    if has "$t"; then report ok "tool:$t" "-" "$(command -v "$t")"
    else report MISSING "tool:$t" "-" "the command $t is not installed"; fi
done

# namespaces
nsok=yes
for ns in mnt uts ipc pid net user cgroup; do
    [ -e /proc/self/ns/$ns ] || nsok="no $ns"
done
if [ "$nsok" = yes ]; then report ok "namespaces" "2-10" "mnt uts ipc pid net user cgroup"
else report MISSING "namespaces" "2-10" "the kernel has no $nsok namespace"; fi
check "unshare (all kinds)" "2,8,10" "cannot create mount/UTS/IPC/PID/network namespaces" \
    unshare --mount --uts --ipc --net --pid --fork --mount-proc true
check "pivot_root" "2,5,10" "pivot_root into a tmpfs fails" \
    unshare --mount --propagation private sh -c "mount -t tmpfs none $TMP && mkdir $TMP/old && cd $TMP && pivot_root . old"

# user namespaces
max=$(cat /proc/sys/user/max_user_namespaces 2>/dev/null || echo 0)
if [ "$max" -gt 0 ] 2>/dev/null; then report ok "user.max_user_namespaces" "9" "$max"
else report MISSING "user.max_user_namespaces" "9" "user namespaces are disabled (sysctl user.max_user_namespaces=0)"; fi
if [ -e /proc/sys/kernel/unprivileged_userns_clone ] && [ "$(cat /proc/sys/kernel/unprivileged_userns_clone)" != 1 ]; then
    report MISSING "unprivileged userns" "9" "ordinary users cannot make user namespaces (sysctl kernel.unprivileged_userns_clone=1)"
fi
check "user namespace (root)" "9" "unshare --user --map-root-user fails" \
    unshare --user --map-root-user true
if [ -n "$STUDENT" ] && id "$STUDENT" >/dev/null 2>&1 && has runuser; then
    check "user namespace ($STUDENT)" "9" "the ordinary user $STUDENT cannot be root in a user namespace" \
        sh -c "[ \"\$(runuser -u $STUDENT -- unshare --user --map-root-user id -u)\" = 0 ]"
fi

# overlayfs
check "overlayfs" "5,10" "overlay mounts fail (kernel module overlay)" \
    unshare --mount --propagation private sh -c \
    "cd $TMP && mkdir -p l u w m && touch l/f && mount -t overlay overlay -o lowerdir=l,upperdir=u,workdir=w m && [ -e m/f ]"

# cgroups
if [ -e /sys/fs/cgroup/cgroup.controllers ]; then
    ctrls=$(cat /sys/fs/cgroup/cgroup.controllers)
    for c in cpu memory pids; do
        case " $ctrls " in
            *" $c "*) report ok "cgroup v2 $c" "10" "controller available" ;;
            *) report MISSING "cgroup v2 $c" "10" "the cgroup v2 controller $c is not enabled" ;;
        esac
    done
else
    for c in cpu memory pids; do
        if [ -d /sys/fs/cgroup/$c ]; then report ok "cgroup v1 $c" "10" "/sys/fs/cgroup/$c"
        else report MISSING "cgroup v1 $c" "10" "no cgroup v1 $c hierarchy under /sys/fs/cgroup"; fi
    done
fi

# network devices, tried in a throwaway network namespace
check "veth" "3,4,6,10" "cannot create veth pairs (kernel module veth)" \
    unshare --net ip link add v0 type veth peer name v1
check "bridge" "3,4,6" "cannot create Linux bridges (kernel module bridge)" \
    unshare --net ip link add b0 type bridge
check "vxlan" "6,7" "cannot create VXLAN devices (kernel module vxlan)" \
    unshare --net sh -c "ip link set lo up && ip link add vx0 type vxlan id 42 dstport 4789 local 127.0.0.1"
check "netns (ip netns)" "3,4,6,7" "ip netns cannot work (no /run/netns?)" \
    unshare --mount --propagation private sh -c "mkdir -p /run/netns && mount -t tmpfs none /run/netns && ip netns add pf && ip netns del pf"

# iptables
check "iptables filter" "3,4" "iptables cannot list the filter table" \
    unshare --net iptables -t filter -S
check "iptables nat" "4" "iptables has no nat table (kernel module iptable_nat / nft_nat)" \
    unshare --net iptables -t nat -S
check "iptables DNAT/MASQUERADE" "4" "NAT targets are missing" \
    unshare --net sh -c "iptables -t nat -A POSTROUTING -s 10.0.0.0/8 -j MASQUERADE && iptables -t nat -A PREROUTING -p tcp --dport 1 -j DNAT --to-destination 10.0.0.1:1"
exit 0
