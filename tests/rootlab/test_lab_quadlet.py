"""The reference's Quadlet units work as written: podman's own generator
(quadlet, podman >= 4.4, so the podman 5 and 6 labs) turns them into a
podman run whose network names are the ones the io.multihome.primary
annotation and `diagnose web` use."""

from __future__ import annotations

import re

from testlab import rootlab
from testlab.rootlab import Lab

UNIT_DIR = "/etc/containers/systemd"


def reference_units() -> dict[str, str]:
    """Each `# /etc/containers/systemd/NAME` block of docs/reference.md: NAME -> text."""
    text = (rootlab.REPO / "docs" / "reference.md").read_text()
    units = {}
    for match in re.finditer(rf"^    # {UNIT_DIR}/(\S+)\n((?:    \S.*\n)+)", text, re.MULTILINE):
        units[match.group(1)] = "".join(line[4:] + "\n"
                                        for line in match.group(2).splitlines())
    return units


def test_the_references_quadlet_units_work_as_written(lab: Lab) -> None:
    units = reference_units()
    assert set(units) == {"net-a.network", "lan.network", "web.container"}, units
    for name, text in units.items():
        path = lab.path(f"{UNIT_DIR}/{name}")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    proc = lab.run("/usr/libexec/podman/quadlet", "-dryrun", check=False)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "ExecStart=/usr/bin/podman network create --ignore net-a\n" in out, out
    (run,) = re.findall(r"^ExecStart=/usr/bin/podman run (.*)$", out, re.MULTILINE)
    assert "--name web " in run and "--network net-a --network lan " in run, run
    assert ("--annotation io.multihome.mode=source-routing "
            "--annotation io.multihome.primary=net-a") in run, run
