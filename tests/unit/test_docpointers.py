"""The check of the installed documentation's pointers
(testlab/docpointers.py, which tests/packages runs on the built packages)
finds each kind of dead one."""

from __future__ import annotations

import gzip
from pathlib import Path

from testlab.docpointers import dead_pointers, slug

DOCS = "usr/share/doc/oci-multihome-hook"


def package(root: Path, readme: str, man: str = "see /usr/share/doc/oci-multihome-hook/") -> Path:
    (root / DOCS / "docs").mkdir(parents=True)
    (root / DOCS / "README.md").write_text(readme)
    (root / DOCS / "docs" / "reference.md").write_text("# Reference\n\n## Exit status\n")
    (root / "usr/share/man/man8").mkdir(parents=True)
    (root / "usr/share/man/man8/oci-multihome-hook.8.gz").write_bytes(
        gzip.compress(man.replace("-", "\\-").encode()))
    return root


def test_slugs_as_github_makes_them() -> None:
    assert slug("Before you install: podman's own options") == \
        "before-you-install-podmans-own-options"
    assert slug("Am I affected?") == "am-i-affected"


def test_links_and_anchors_that_resolve(tmp_path: Path) -> None:
    root = package(tmp_path, "# Top\n[r](docs/reference.md#exit-status) [t](#top) "
                             "[w](https://example.org/x.md)\n")
    assert dead_pointers(root, "more: /usr/share/doc/oci-multihome-hook/README.md; "
                               "man oci-multihome-hook") == []


def test_each_dead_pointer_is_named(tmp_path: Path) -> None:
    root = package(tmp_path, "[k](docs/kubernetes.md) [x](docs/reference.md#nowhere)\n"
                             "/usr/share/doc/oci-multihome-hook-*/examples\n",
                   man="The README has it.")
    readme = "/usr/share/doc/oci-multihome-hook/README.md"
    assert dead_pointers(root, "(see the README) man oci-multihome-hook-reference") == [
        f"{readme}: /usr/share/doc/oci-multihome-hook-*/examples: not installed",
        f"{readme}: link docs/kubernetes.md: /usr/share/doc/oci-multihome-hook/docs/"
        "kubernetes.md not installed",
        f"{readme}: link docs/reference.md#nowhere: no heading #nowhere in "
        "/usr/share/doc/oci-multihome-hook/docs/reference.md",
        "usr/share/man/man8/oci-multihome-hook.8.gz: 'README' names no installed file "
        "(give its path)",
        "--help: man oci-multihome-hook-reference: no such page installed",
        "--help: 'README' names no installed file (give its path)"]
