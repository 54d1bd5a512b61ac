"""doctor and the hooks directories: the lists containers.conf gives
(podman 6 appends with {append=true}), and every invalid hook file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from multihome_hook import doctor
from multihome_hook.doctor import ETC_HOOKS, SHARE_HOOKS, Facts, Network, judge, lines


def confs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, *texts: str) -> None:
    files = []
    for i, text in enumerate(texts):
        files.append(tmp_path / f"{i}.conf")
        files[-1].write_text(text)
    monkeypatch.setattr(doctor, "_conf_files", lambda: files)


def test_a_list_replaces_the_one_before(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    confs(monkeypatch, tmp_path, '[engine]\nhooks_dir = ["/a"]\n', '[engine]\nhooks_dir = ["/b"]\n')
    assert doctor._conf_list("hooks_dir", [SHARE_HOOKS]) == ["/b"]


def test_an_appended_list_adds_to_the_one_before(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    confs(monkeypatch, tmp_path, '[engine]\nhooks_dir = ["/opt/hooks", {append=true}]\n',
          '[engine]\nhooks_dir = [ "/srv/hooks" , { append = true } ]\n')
    assert doctor._conf_list("hooks_dir", [SHARE_HOOKS]) == [SHARE_HOOKS, "/opt/hooks",
                                                             "/srv/hooks"]


def test_without_a_list_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    confs(monkeypatch, tmp_path, "[containers]\n")
    assert doctor._conf_list("hooks_dir", [SHARE_HOOKS, ETC_HOOKS]) == [SHARE_HOOKS, ETC_HOOKS]


def test_each_invalid_hook_is_a_line_with_its_reason() -> None:
    facts = Facts(1, 1, "6.1.1", "netavark", "netavark 2.0.0", "crun", (Network("a", "bridge"),),
                  (SHARE_HOOKS,), invalid_hooks=((f"{SHARE_HOOKS}/x.json", "missing stages: "
                                                  "podman refuses every container"),))
    shown = lines(facts, judge(facts))
    assert (f"invalid hook {SHARE_HOOKS}/x.json: missing stages: podman refuses every "
            "container") in shown
    assert not any("invalid hook" in line for line in lines(
        facts.replace(invalid_hooks=()), judge(facts)))
