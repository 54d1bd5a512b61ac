"""Rootless podman: the hook as the user's containers get it, and the CLI run
by that user (not root) on its own containers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab.labnet import SPARE_SUBNETS
from testlab.policy import require
from testlab.rootlab import Container, Lab
from testlab.rootless import RootlessUser, rootless_user
from testlab.settings import hook_binary

MODE = "io.multihome.mode"


@pytest.fixture(scope="session")
def podman(podman_lab: Lab, hooks: Path) -> Lab:
    """Under runc only: what is rootless here is podman's part (the user's
    network namespace, slirp4netns), not the runtime's."""
    return podman_lab.using(runtime="runc", hooks=hooks)


@pytest.fixture(scope="module")
def user(podman: Lab) -> Iterator[RootlessUser]:
    for tool in ("useradd", "runuser", "newuidmap", "slirp4netns"):
        require(shutil.which(tool) is not None, f"needs {tool}")
    with rootless_user() as made:
        for i, subnet in enumerate(SPARE_SUBNETS):  # in the user's own network namespace
            made.podman("network", "create", "--subnet", subnet, f"rl{i}")
        yield made


def start(user: RootlessUser, podman: Lab, annotations: dict[str, str],
          name: str) -> Container:
    """A running rootless container on both networks (with our hook)."""
    argv = podman.run_argv(["rl0", "rl1"], annotations, extra=["-d", "--name", name],
                           rootfs=user.rootfs)
    user.podman(*argv, "sleep", "600")
    (state,) = json.loads(user.podman("inspect", name).stdout)
    return Container(podman, name, state["Id"], state["State"]["Pid"], podman.runtime)


def test_rootless_hook_applies_the_mode(user: RootlessUser, podman: Lab) -> None:
    c = start(user, podman, {MODE: "one-default"}, "rl-hooked")
    assert len(c.default_routes()) == 1
    argv = podman.run_argv(["rl0", "rl1"], {MODE: "bogus"}, extra=["--rm"], rootfs=user.rootfs)
    refused = user.podman(*argv, "true", check=False)
    assert refused.returncode != 0 and "unknown io.multihome.mode 'bogus'" in refused.stderr


def test_rootless_cli_on_the_users_own_container(user: RootlessUser,
                                                 podman: Lab) -> None:
    c = start(user, podman, {}, "rl-plain")
    cli = str(hook_binary())
    sick = user.run(cli, "diagnose", "rl-plain", check=False)
    assert sick.returncode == 1 and "problem (outbound): traffic leaving by" in sick.stdout, sick
    applied = user.run(cli, "apply", "--mode", "source-routing", "rl-plain", check=False)
    assert applied.returncode == 0, applied.stderr
    rules = c.ns("ip", "rule").stdout
    assert "32701:\tfrom all oif eth0 lookup" in rules and "oif eth1" in rules
    healthy = user.run(cli, "diagnose", "--json", "rl-plain", check=False)
    assert healthy.returncode == 0, healthy.stderr
    assert json.loads(healthy.stdout)["containers"][0]["healthy"] is True
