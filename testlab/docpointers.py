"""Every pointer of the installed documentation, checked against what a
package installs: an operator offline has only those files.

The pages are the README (and the pages it links, followed), the man page
and `--help`. A pointer is a Markdown link (relative to its page, with its
#anchor), a path in the package's documentation directory
(/usr/share/doc/oci-multihome-hook/...), or `man oci-multihome-hook`; a
bare "README" or "name.md" in the man page or `--help` is itself a dead
pointer (which file, where?). `root` is a package's files unpacked
(dpkg-deb -x, rpm2cpio).
"""

from __future__ import annotations

import gzip
import posixpath
import re
from pathlib import Path, PurePosixPath

NAME = "oci-multihome-hook"
DOCS = PurePosixPath("/usr/share/doc") / NAME
README = DOCS / "README.md"
MAN_PAGES = PurePosixPath("/usr/share/man")

_LINK = re.compile(r"\]\(([^)\s]+)\)")
# A path into the documentation, up to a space, quote or closing bracket
# (the man page's hyphens unescaped first). A glob (`*`) is no single file.
_OURS = re.compile(re.escape(str(DOCS)) + r"[\w./*-]*")
_MAN = re.compile(r"\bman (" + re.escape(NAME) + r"[\w-]*)")
# "README" or "x.md" not part of a path: a pointer to no file.
_BARE = re.compile(r"(?<![\w./-])(README|[\w-]+\.md)\b(?![\w/.-])")


def slug(heading: str) -> str:
    """A heading's anchor as GitHub (and most renderers) make it."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(markdown: str) -> set[str]:
    fenced = False
    found = set()
    for line in markdown.splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#+ (.*)", line)):
            found.add(slug(m.group(1)))
    return found


def _inside(root: Path, path: PurePosixPath) -> Path:
    return root / str(path).lstrip("/")


def _man_page(root: Path, name: str) -> Path | None:
    for page in sorted(_inside(root, MAN_PAGES).glob(f"man*/{name}.*")):
        return page
    return None


def _absolute(root: Path, text: str, where: str) -> list[str]:
    dead = []
    for match in _OURS.finditer(text):
        path = match.group(0).rstrip(".")
        if "*" in path or not _inside(root, PurePosixPath(path)).exists():
            dead.append(f"{where}: {path}: not installed")
    for match in _MAN.finditer(text):
        if _man_page(root, match.group(1)) is None:
            dead.append(f"{where}: man {match.group(1)}: no such page installed")
    return dead


def _markdown(root: Path, page: PurePosixPath, seen: set[PurePosixPath]) -> list[str]:
    """Dead pointers of an installed Markdown page and of those it links."""
    seen.add(page)
    text = _inside(root, page).read_text()
    dead = _absolute(root, text, str(page))
    for match in _LINK.finditer(text):
        target = match.group(1)
        if re.match(r"[a-z]+:", target):  # https:, mailto:: not a file
            continue
        file, _, anchor = target.partition("#")
        linked = PurePosixPath(posixpath.normpath(page.parent / file)) if file else page
        if not _inside(root, linked).is_file():
            dead.append(f"{page}: link {target}: {linked} not installed")
            continue
        if linked.suffix != ".md":
            continue
        if anchor and anchor not in anchors(_inside(root, linked).read_text()):
            dead.append(f"{page}: link {target}: no heading #{anchor} in {linked}")
        if linked not in seen:
            dead += _markdown(root, linked, seen)
    return dead


def _plain(root: Path, text: str, where: str) -> list[str]:
    dead = _absolute(root, text, where)
    dead += [f"{where}: {m.group(0)!r} names no installed file (give its path)"
             for m in _BARE.finditer(text)]
    return dead


def man_text(page: Path) -> str:
    """A man page's source, its escapes that hide text undone (\\- -> -)."""
    raw = gzip.decompress(page.read_bytes()) if page.suffix == ".gz" else page.read_bytes()
    return re.sub(r"\\f[BIRP]", "", raw.decode().replace("\\-", "-"))


def dead_pointers(root: Path, help_text: str) -> list[str]:
    """What the installed README (and the pages it links), the man page and
    `help_text` (every command's --help) point to that `root` lacks."""
    if not _inside(root, README).is_file():
        return [f"{README}: not installed"]
    dead = _markdown(root, README, set())
    page = _man_page(root, NAME)
    if page is None:
        dead.append(f"man {NAME}: not installed")
    else:
        dead += _plain(root, man_text(page), str(page.relative_to(root)))
    return dead + _plain(root, help_text, "--help")
