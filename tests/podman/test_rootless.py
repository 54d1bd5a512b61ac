"""Rootless podman: the hook as the user's containers get it, and the CLI run
by that user (not root) on its own containers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from testlab import lab
from testlab.policy import require
from testlab.rootless import RootlessUser, rootless_user

MODE = "io.multihome.mode"


@pytest.fixture(scope="session")
def podman(podman_lab: lab.Podman) -> lab.Podman:
    """runc only: this lab's crun is a wrapper that unmounts the host's
    cgroup2 in a mount namespace of its own (testlab/lab.py); a rootless
    podman runs it in a user namespace, where the mounts inherited from the
    host are locked (umount: "not mounted")."""
    return podman_lab


@pytest.fixture(scope="module")
def user(podman: lab.Podman) -> Iterator[RootlessUser]:
    for tool in ("useradd", "runuser", "newuidmap", "slirp4netns"):
        require(shutil.which(tool) is not None, f"needs {tool}")
    with rootless_user(podman) as made:
        for i in range(2):  # the lab slot's networks 5 and 6
            made.podman("network", "create", "--subnet", podman.slot.subnet(5 + i), f"rl{i}")
        yield made


def start(user: RootlessUser, podman: lab.Podman, annotations: dict[str, str],
          name: str) -> lab.Container:
    """A running rootless container on both networks (with our hook)."""
    argv = podman.run_argv(["rl0", "rl1"], annotations, podman.hooks_dir(),
                           ["-d", "--name", name], user.rootfs)
    user.podman(*argv, "sleep", "600")
    (state,) = json.loads(user.podman("inspect", name).stdout)
    return lab.Container(podman, name, state["State"]["Pid"])


def test_rootless_hook_applies_the_mode(user: RootlessUser, podman: lab.Podman) -> None:
    c = start(user, podman, {MODE: "one-default"}, "rl-hooked")
    assert len(c.default_routes()) == 1
    argv = podman.run_argv(["rl0", "rl1"], {MODE: "bogus"}, podman.hooks_dir(), ["--rm"],
                           user.rootfs)
    refused = user.podman(*argv, "true", check=False)
    assert refused.returncode != 0 and "unknown io.multihome.mode 'bogus'" in refused.stderr


def test_rootless_cli_on_the_users_own_container(user: RootlessUser,
                                                 podman: lab.Podman) -> None:
    c = start(user, podman, {}, "rl-plain")
    cli = str(lab.hook_binary())
    sick = user.run(cli, "diagnose", "rl-plain", check=False)
    assert sick.returncode == 1 and "problem (outbound): traffic leaving by" in sick.stdout, sick
    applied = user.run(cli, "apply", "--mode", "source-routing", "rl-plain", check=False)
    assert applied.returncode == 0, applied.stderr
    rules = c.ns("ip", "rule").stdout
    assert "32701:\tfrom all oif eth0 lookup" in rules and "oif eth1" in rules
    healthy = user.run(cli, "diagnose", "--json", "rl-plain", check=False)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["containers"][0]["healthy"] is True
