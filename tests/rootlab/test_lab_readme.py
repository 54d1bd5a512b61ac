"""The README, followed from top to bottom as a new operator would, on
podman 4.3 and on podman 6 (each in a root lab of its own, the deb
installed by apt): its commands as the README writes them, read from the
README itself, from "Am I affected?" to "Uninstall".

What a lab cannot take literally is replaced, and only that: IMAGE (a
busybox rootfs and the lab's podman flags), the networks `net-a` and `lan`
(the lab's bridge and macvlan) and the container `web` (the lab's name).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path

import pytest

from testlab import labnet, rootlab
from testlab.commands import REPO
from testlab.roots import PODMAN4, PODMAN6, Stack

README = (REPO / "README.md").read_text()
pytestmark = pytest.mark.xdist_group("readme")


def section(title: str) -> str:
    """The text of a `## title` section."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def commands(text: str) -> list[str]:
    """The shell commands of a section's indented blocks: continuation
    lines joined, comments (two spaces, #) dropped, sample output (lines
    not starting a command) left out."""
    found: list[str] = []
    pending = ""
    for line in text.splitlines():
        if not line.startswith("    ") or (line.startswith("     ") and not pending):
            continue
        line = re.split(r"\s{2,}# ", line.strip(), maxsplit=1)[0]
        pending += line
        if pending.endswith("\\"):
            pending = pending[:-1]
            continue
        found.append(" ".join(pending.split()))
        pending = ""
    return found


@pytest.fixture(scope="module", params=[PODMAN4, PODMAN6], ids=lambda stack: stack.name)
def lab(request: pytest.FixtureRequest, deb: Path) -> Iterator[rootlab.Lab]:
    """A lab of its own: the walk ends by purging the package."""
    stack: Stack = request.param
    stack.ensure()
    with rootlab.running(stack, deb) as found:
        yield found


def sh(lab: rootlab.Lab, command: str, expected: int = 0, answer: str | None = None) -> str:
    """Run `command` as typed; `answer`: what the operator types to it."""
    proc = lab.run("sh", "-c", command, check=False, stdin=answer)
    assert proc.returncode == expected, f"{command}: {proc.stdout}{proc.stderr}"
    return proc.stdout


def test_a_new_operator_reaches_a_fixed_container(lab: rootlab.Lab) -> None:
    names = {"net-a": labnet.BRIDGE_A.name, "lan": labnet.MACVLAN.name}
    # Am I affected? The lab is strict, as a RHEL host: the facts, then
    # doctor (exit 0: affected, but the hook is installed where podman reads).
    look, (doctor, diagnose_all) = (lambda c: (c[:-2], c[-2:]))(
        commands(section("Am I affected?")))
    assert len(look) == 3 and doctor == "oci-multihome-hook doctor", look
    for command in look:
        sh(lab, command)
    assert "verdict: affected" in sh(lab, doctor)
    assert "no running podman container" in sh(lab, diagnose_all)

    # Check: a container without the annotation, as diagnose finds it.
    (check, *_) = commands(section("Check"))
    with lab.container([names["net-a"], names["lan"]]) as c:
        sick = sh(lab, check.replace("web", c.name), expected=1)
        fixes = re.findall(r"^  fix with (.*)$", sick, re.MULTILINE)
        assert fixes[0].startswith("--mode source-routing (recommended:"), sick
        (now,) = re.findall(r"^    now: +(oci-multihome-hook apply --mode source-routing .*)$",
                            sick, re.MULTILINE)
        sh(lab, now)
        fixed = sh(lab, check.replace("web", c.name))
        assert "note: source routing in place: 4 rules at priorities 32700/32701" in fixed
        sh(lab, diagnose_all)

    # Annotate: the README's podman run, with the lab's image.
    (run,) = [c for c in commands(section("Annotate")) if c.startswith("podman run ")]
    argv = shlex.split(run)
    assert argv[-1] == "IMAGE", run
    networks = [names[argv[i + 1]] for i, a in enumerate(argv) if a == "--network"]
    annotations = dict(argv[i + 1].split("=", 1) for i, a in enumerate(argv)
                       if a == "--annotation")
    annotations = {k: names.get(v, v) for k, v in annotations.items()}
    with lab.container(networks, annotations) as c:
        healthy = sh(lab, check.replace("web", c.name))
        assert f"{c.name} (" in healthy and ": healthy" in healthy, healthy

    # Uninstall (Debian's line): the hook goes, annotated containers still start.
    (purge, _) = commands(section("Uninstall"))
    assert purge.startswith("apt-get purge"), purge
    sh(lab, purge, answer="y\n")  # apt asks
    assert not lab.path("/usr/share/containers/oci/hooks.d/oci-multihome-hook.json").exists()
    with lab.container(networks, annotations) as c:
        assert len(c.default_routes()) == 2  # nothing changed it
