"""A throw-away user for rootless podman in the lab this process runs in
(testlab/rootlab.py's here()): it, and all it made, goes with the lab.

What rootless podman needs: subordinate uid/gid ranges, a runtime
directory, /dev/net/tun usable by the user (the lab's own node is, see
rootlab_files/setup.sh) and the hook under test within reach (its
interpreter may be a pyenv build under /root, 0700 in the lab's root).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from collections.abc import Iterator
from pathlib import Path

from .commands import run
from .rootlab import ROOTFS
from .settings import hook_binary

USER = "mhrootless"
SUBIDS = "300000-365535"


class RootlessUser:
    def __init__(self, name: str) -> None:
        self.name = name
        self.uid = pwd.getpwnam(name).pw_uid
        self.runtime_dir = Path(f"/run/user/{self.uid}")
        # podman writes /etc/hosts & co. into a --rootfs: the user must own it.
        self.rootfs = f"/home/{name}/rootfs"

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """As the user, in a login-like environment (no root's variables)."""
        env = [f"HOME=/home/{self.name}", f"XDG_RUNTIME_DIR={self.runtime_dir}",
               "PATH=/usr/sbin:/usr/bin:/sbin:/bin"]
        return run("runuser", "-u", self.name, "--", "env", "-i", *env, *argv, check=check)

    def podman(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("podman", *argv, check=check)


@contextlib.contextmanager
def rootless_user() -> Iterator[RootlessUser]:
    run("useradd", "--create-home", "--shell", "/bin/sh", USER)
    run("usermod", "--add-subuids", SUBIDS, "--add-subgids", SUBIDS, USER)
    user = RootlessUser(USER)
    user.runtime_dir.mkdir(mode=0o700, parents=True)
    os.chown(user.runtime_dir, user.uid, user.uid)
    run("cp", "-a", ROOTFS, user.rootfs)
    run("chown", "-R", f"{user.uid}:{user.uid}", user.rootfs)
    hook = hook_binary()
    interpreter = Path(hook.read_text().splitlines()[0][2:].split()[0]).resolve()
    # The lab's own directories (the read-only binds below them are open).
    for directory in {*hook.parents, *interpreter.parents}:
        if not directory.stat().st_mode & 0o001:
            directory.chmod(directory.stat().st_mode | 0o001)
    try:
        yield user
    finally:
        run("pkill", "-KILL", "-u", USER, check=False)  # rootless netns, pause process
