"""A throw-away user for rootless podman, removed with everything it made.

What rootless podman needs on this machine: subordinate uid/gid ranges, a
runtime directory, and /dev/net/tun usable by the user (slirp4netns).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .lab import Podman, run

USER = f"mhrootless{os.getpid() % 10000}"
SUBIDS = "300000-365535"


class RootlessUser:
    def __init__(self, name: str, podman: Podman) -> None:
        self.name = name
        self.uid = pwd.getpwnam(name).pw_uid
        self.runtime_dir = Path(f"/run/user/{self.uid}")
        self.conf = podman.conf
        # podman writes /etc/hosts & co. into a --rootfs: the user must own it.
        self.rootfs = Path(f"/home/{name}/rootfs")

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """As the user, in a login-like environment (no root's variables)."""
        env = [f"HOME=/home/{self.name}", f"XDG_RUNTIME_DIR={self.runtime_dir}",
               f"CONTAINERS_CONF={self.conf}", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        return run("runuser", "-u", self.name, "--", "env", "-i", *env, *argv, check=check)

    def podman(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *argv, check=check)


@contextlib.contextmanager
def rootless_user(podman: Podman) -> Iterator[RootlessUser]:
    tun = Path("/dev/net/tun")
    tun_mode = tun.stat().st_mode & 0o777
    user = None
    try:
        run("useradd", "--create-home", "--shell", "/bin/sh", USER)
        run("usermod", "--add-subuids", SUBIDS, "--add-subgids", SUBIDS, USER)
        user = RootlessUser(USER, podman)
        user.runtime_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(user.runtime_dir, user.uid, user.uid)
        run("cp", "-a", str(podman.rootfs), str(user.rootfs))
        run("chown", "-R", f"{user.uid}:{user.uid}", str(user.rootfs))
        tun.chmod(0o666)
        # The lab's config and rootfs live in a private temporary directory.
        podman.workdir.chmod(0o755)
        yield user
    finally:
        tun.chmod(tun_mode)
        if user is not None:
            user.podman("system", "reset", "--force", check=False)
        run("pkill", "-KILL", "-u", USER, check=False)  # rootless netns, pause process
        run("userdel", "--remove", USER, check=False)
        if user is not None:
            run("rm", "-rf", str(user.runtime_dir), check=False)
