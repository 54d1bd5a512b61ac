#!/bin/sh
# Run by testlab/rootlab.py as `unshare --net --mount --pid --cgroup --uts
# --ipc --fork --propagation private sh setup.sh ROOT BASE PAYLOAD [DIR...]`: pid 1 of
# new namespaces, still on the host's file system. Builds the lab's file
# system, pivots into it and becomes the lab's init. Every mount is made in
# this private mount namespace: the kernel drops them all with the lab.
set -eu
ROOT=$1 BASE=$2 PAYLOAD=$3
shift 3

# The cached root stays pristine: every lab writes to an overlay whose upper
# layer is a tmpfs (no container, network or package survives a run).
mount -t tmpfs -o mode=0755 mhlab "$BASE"
mkdir "$BASE/upper" "$BASE/work" "$BASE/root"
mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$BASE/upper,workdir=$BASE/work" "$BASE/root"
R=$BASE/root
# GNU tar with --no-overwrite-dir: the payload's files, not its directories'
# modes (a 0700 temporary directory must not become the root's mode).
tar -C "$PAYLOAD" -cf - . | tar -C "$R" --no-overwrite-dir -xf -

mount -t proc proc "$R/proc"
# A fresh sysfs shows this network namespace's devices (netavark reads them).
mount -t sysfs sysfs "$R/sys"
# The cgroup namespace's root: the lab's own cgroup, made by the host side.
mount -t cgroup2 cgroup2 "$R/sys/fs/cgroup"
# That root must hold no process, or crun cannot enable a controller for
# its children (EBUSY, which it retries for 2.4 s on every container): the
# lab's own processes live in a leaf, /init (0: the writing shell).
mkdir "$R/sys/fs/cgroup/init"
echo 0 > "$R/sys/fs/cgroup/init/cgroup.procs"
# Device nodes of the lab's own, not binds of the host's: a test that
# changes one (rootless podman needs /dev/net/tun usable by a user) leaves
# the host's as it was.
mount -t tmpfs -o mode=0755 dev "$R/dev"
mkdir "$R/dev/net"
device() { mknod -m 666 "$R/dev/$1" c "$2" "$3"; }
device null 1 3; device zero 1 5; device full 1 7; device random 1 8
device urandom 1 9; device tty 5 0; device net/tun 10 200
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777 shm "$R/dev/shm"
mount -t mqueue mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
ln -s /proc/self/fd/0 "$R/dev/stdin"
ln -s /proc/self/fd/1 "$R/dev/stdout"
ln -s /proc/self/fd/2 "$R/dev/stderr"
mount -t tmpfs -o mode=0755 run "$R/run"
mount -t tmpfs -o mode=1777 tmp "$R/tmp"
# Each DIR: the host's, read-only, at the same path (running(binds=...));
# +DIR: writable (running(writable=...): where a run leaves its results).
# After the tmpfs mounts: a checkout under /tmp must not be hidden by the
# lab's own /tmp.
for dir in "$@"; do
    case $dir in
        +*) dir=${dir#+}; mkdir -p "$R$dir"; mount --bind "$dir" "$R$dir" ;;
        *) mkdir -p "$R$dir"; mount --bind "$dir" "$R$dir"; mount -o remount,bind,ro "$R$dir" ;;
    esac
done

if [ "${MHLAB_INIT:-}" = systemd ]; then
    # systemd as the lab's init (running(systemd=True)): what it would change
    # beyond the lab's namespaces is out of its reach. /proc/sys read-only:
    # PID 1 raises fs.file-max and fs.nr_open, systemd-sysctl and
    # systemd-binfmt write the kernel's global settings (their units skip a
    # read-only /proc/sys). /sys read-only: udev would trigger uevents for
    # the machine's devices, systemd-pstore empty its pstore. Only the lab's
    # cgroup (the cgroup namespace's root: the cgroup2 mount on /sys/fs/cgroup
    # stays writable) is systemd's. No /dev/console or /dev/kmsg: its messages go to
    # setup.log and its journal.
    echo mhlab > /proc/sys/kernel/hostname
    echo mhlab > "$R/etc/hostname"
    mount --bind "$R/proc/sys" "$R/proc/sys"
    mount -o remount,bind,ro "$R/proc/sys"
    mount -o remount,bind,ro "$R/sys"
    # Kernel modules are the machine's: never load any.
    ln -sf /dev/null "$R/etc/systemd/system/systemd-modules-load.service"
    mkdir -p "$R/run/mhlab"
    # The host waits for this; the test then for systemd (Lab.boot_wait).
    : > "$R/run/mhlab/ready"
fi

# pivot_root, not chroot: `crun exec` joins a container's mount namespace at
# its root, which must be the lab's root.
cd "$R"
mkdir .oldroot
pivot_root . .oldroot
cd /
umount -l /.oldroot
rmdir /.oldroot
if [ "${MHLAB_INIT:-}" = systemd ]; then
    # PID 1 back in the cgroup namespace's root, which becomes systemd's
    # (init.scope, system.slice...); the lab's commands stay in /init.
    echo 0 > /sys/fs/cgroup/cgroup.procs
    exec env -i container=rootlab /usr/lib/systemd/systemd </dev/null
fi
exec /usr/bin/python3 -I /usr/local/sbin/mhlab-init
