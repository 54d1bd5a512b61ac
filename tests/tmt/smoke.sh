#!/bin/sh
# The installed package as an operator first meets it (tmt: plans/smoke.fmf):
# doctor, the hook JSON as podman judges it, the hook on a fake OCI state
# (a process in a network namespace of its own: nothing to change), and the
# files as the package manager installed them. Needs root (unshare --net).
set -eu

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

LAUNCHER=/usr/libexec/oci/hooks.d/oci-multihome-hook
HOOK_JSON=/usr/share/containers/oci/hooks.d/oci-multihome-hook.json
out=$(mktemp -d)
pid=
cleanup() {
    if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    rm -rf "$out"
}
trap cleanup EXIT

command -v oci-multihome-hook >/dev/null || fail "oci-multihome-hook is not on PATH: is the package installed?"
oci-multihome-hook --version

# 0 not affected (or the hook in place), 1 affected without it; 2 an error.
status=0
oci-multihome-hook doctor > "$out/doctor" || status=$?
cat "$out/doctor"
[ "$status" -le 1 ] || fail "doctor exited $status"
if grep "^invalid hook $HOOK_JSON" "$out/doctor"; then
    fail "podman would refuse the installed hook JSON"
fi

# The JSON as podman validates it (version, hook.path, stages, when), with
# the package's own module and the system Python, as the launcher runs.
/usr/bin/python3 -I -c '
import sys
from pathlib import Path
from multihome_hook.hookfiles import problems
found = problems(Path(sys.argv[1]).read_text())
print("\n".join(found) or sys.argv[1] + ": a valid hook")
sys.exit(1 if found else 0)' "$HOOK_JSON" || fail "the installed hook JSON is invalid"

# The hook on a fake OCI state. The pid is that of a process in a network
# namespace of its own (lo only): waited for, so that the hook does not see
# the host's namespace (which it would leave alone all the same).
unshare --net sleep 300 &
pid=$!
tries=0
while [ "$(readlink /proc/$pid/ns/net)" = "$(readlink /proc/self/ns/net)" ]; do
    tries=$((tries + 1))
    [ "$tries" -lt 50 ] || fail "unshare --net made no network namespace"
    sleep 0.1
done
state() {
    printf '{"ociVersion": "1.0.2", "id": "tmt-smoke", "status": "creating", "pid": %s, "bundle": "/", "annotations": {"io.multihome.mode": "%s"}}' "$pid" "$1"
}
state source-routing | "$LAUNCHER" || fail "the hook refused a container with nothing to fix"
status=0
state bogus | "$LAUNCHER" 2> "$out/hook" || status=$?
[ "$status" = 10 ] || fail "an unknown mode: exit $status, not 10"
grep -q "unknown io.multihome.mode 'bogus'" "$out/hook" || fail "no reason given: $(cat "$out/hook")"
status=0
"$LAUNCHER" < /dev/null 2> "$out/hook" || status=$?
[ "$status" = 16 ] || fail "an empty state: exit $status, not 16"
echo "the hook: 0 for nothing to fix, 10 for an unknown mode, 16 for an empty state"

# The files as installed: rpm -V where rpm installed the package; where
# it is a deb (tmt run on Debian), dpkg --verify does the same.
if rpm -q --quiet oci-multihome-hook 2>/dev/null; then
    rpm -V oci-multihome-hook
    echo "rpm -V oci-multihome-hook: every file as packaged"
elif dpkg-query -W oci-multihome-hook >/dev/null 2>&1; then
    echo "rpm -V: skipped, the package is a deb here: dpkg --verify in its place"
    dpkg --verify oci-multihome-hook
    echo "dpkg --verify oci-multihome-hook: every file as packaged"
else
    fail "neither rpm nor dpkg knows oci-multihome-hook"
fi
