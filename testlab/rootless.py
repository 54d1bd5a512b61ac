"""A throw-away user for rootless podman, removed with everything it made.

What rootless podman needs on this machine: subordinate uid/gid ranges, a
runtime directory, and /dev/net/tun usable by the user (slirp4netns).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

from .commands import run
from .lab import Podman, hook_binary

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


def _closed_directories(*paths: Path) -> list[Path]:
    """The directories above `paths` that only their owner may traverse."""
    found: list[Path] = []
    for path in paths:
        for parent in reversed(path.parents):
            if not parent.stat().st_mode & 0o001 and parent not in found:
                found.append(parent)
    return found


@contextlib.contextmanager
def _traversable_by(user: str, paths: Sequence[Path]) -> Iterator[None]:
    """Let `user` reach `paths` (the hook under test runs as that user: its
    interpreter may be a pyenv build under root's 0700 home), by an ACL entry
    for that user only, removed again with every other ACL change."""
    closed = _closed_directories(*paths)
    if not closed:
        yield
        return
    saved = run("getfacl", "--absolute-names", *map(str, closed)).stdout
    try:
        for directory in closed:
            run("setfacl", "-m", f"u:{user}:x", str(directory))
        yield
    finally:
        run("setfacl", "--restore=-", stdin=saved)


@contextlib.contextmanager
def rootless_user(podman: Podman) -> Iterator[RootlessUser]:
    tun = Path("/dev/net/tun")
    tun_mode = tun.stat().st_mode & 0o777
    user = None
    hook = hook_binary()
    interpreter = Path(hook.read_text().splitlines()[0][2:].split()[0]).resolve()
    try:
        run("useradd", "--create-home", "--shell", "/bin/sh", USER)
        run("usermod", "--add-subuids", SUBIDS, "--add-subgids", SUBIDS, USER)
        user = RootlessUser(USER, podman)
        user.runtime_dir.parent.mkdir(mode=0o755, exist_ok=True)  # a root lab has no /run/user
        user.runtime_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(user.runtime_dir, user.uid, user.uid)
        run("cp", "-a", str(podman.rootfs), str(user.rootfs))
        run("chown", "-R", f"{user.uid}:{user.uid}", str(user.rootfs))
        tun.chmod(0o666)
        with _traversable_by(USER, [hook, interpreter]):
            yield user
    finally:
        tun.chmod(tun_mode)
        if user is not None:
            user.podman("system", "reset", "--force", check=False)
        run("pkill", "-KILL", "-u", USER, check=False)  # rootless netns, pause process
        run("userdel", "--remove", USER, check=False)
        if user is not None:
            run("rm", "-rf", str(user.runtime_dir), check=False)
