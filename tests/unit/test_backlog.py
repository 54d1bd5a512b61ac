"""`watch`'s backlog (backlog.py): events folded per container, the newest
state winning; containers that are gone dropped without asking podman;
a process newer than podman's answer refused; what an operator reads when
watch lags. And watch's workers on it, with podman and the namespaces
stood in for."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from multihome_hook import backlog, cli, containers, log
from multihome_hook.backlog import LAG_EVERY_S, LAG_S, Backlog, Known, Pending
from multihome_hook.errors import OK, HookError, NoNamespace
from multihome_hook.models import PodmanEvent, parse

A, B = "a" * 64, "b" * 64


def event(cid: str, status: str, network: str = "") -> PodmanEvent:
    return parse(PodmanEvent, {"ID": cid, "Type": "network" if network else "container",
                               "Status": status, "network": network})


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_containers_events_fold_into_one_run_the_newest_state_winning() -> None:
    waiting = Backlog()
    for e in (event(A, "disconnect", "n1"), event(A, "connect", "n1"),
              event(A, "connect", "n2"), event(A, "disconnect", "n2")):
        waiting.add(e)
    pending = waiting.take()
    assert pending is not None
    assert (pending.events, waiting.read, waiting.folded) == (4, 4, 3)
    assert pending.networks == {"n1": "connect", "n2": "disconnect"}
    assert pending.connected() == ["n1"]
    assert pending.describe() == "network n1 connected, network n2 disconnected"


@pytest.mark.parametrize(("statuses", "started", "ended"), [
    (["start"], True, False),
    (["start", "died"], True, True),  # a late start of a container gone since
    (["died", "start"], True, False),  # a restart
    (["start", "died", "remove"], True, True),
    (["died"], False, True),
])
def test_a_container_ended_after_its_last_start_is_gone(statuses: list[str], started: bool,
                                                        ended: bool) -> None:
    pending = Pending(A, 0.0)
    for status in statuses:
        pending.add(event(A, status))
    assert (pending.started, pending.ended) == (started, ended)


def test_containers_are_taken_in_the_order_their_first_event_came() -> None:
    waiting = Backlog()
    for e in (event(B, "start"), event(A, "start"), event(B, "connect", "n1")):
        waiting.add(e)
    first, second = waiting.take(), waiting.take()
    assert first is not None and second is not None
    assert (first.id, first.events, second.id) == (B, 2, A)


def test_events_that_come_while_a_container_is_handled_wait_for_a_run_of_their_own() -> None:
    waiting = Backlog()
    waiting.add(event(A, "start"))
    running = waiting.take()
    assert running is not None
    waiting.add(event(A, "connect", "n1"))  # during the run: it may have read too early
    waiting.add(event(B, "start"))
    other = waiting.take()
    assert other is not None and other.id == B  # A is held: another container goes first
    taken: list[Pending | None] = []
    worker = threading.Thread(target=lambda: taken.append(waiting.take()))
    worker.start()
    worker.join(0.2)
    assert worker.is_alive()  # A's new events wait for its run to end
    waiting.done(running)
    worker.join(5)
    (after,) = taken
    assert after is not None and (after.id, after.networks, after.started) == (
        A, {"n1": "connect"}, False)


def test_take_ends_once_closed() -> None:
    waiting = Backlog()
    taken: list[Pending | None] = []
    worker = threading.Thread(target=lambda: taken.append(waiting.take()))
    worker.start()
    waiting.close()
    worker.join(5)
    assert taken == [None]


def test_a_removed_container_is_forgotten_and_memory_stays_bounded() -> None:
    waiting = Backlog()
    waiting.remember(A, Known(1, 2, True))
    waiting.add(event(A, "remove"))
    assert waiting.known(A) is None
    for i in range(backlog.REMEMBERED + 10):
        waiting.remember(f"{i:064d}", Known(1, 2, False))
    assert len(waiting._known) <= backlog.REMEMBERED


def test_a_lag_is_said_with_the_backlog_and_not_again_at_once() -> None:
    clock = Clock()
    waiting = Backlog(clock)
    for e in (event(A, "start"), event(A, "connect", "n1"), event(B, "start")):
        waiting.add(e)
    clock.now = LAG_S / 2
    a = waiting.take()
    assert a is not None and waiting.behind(a) is None  # in time
    clock.now = LAG_S + 1.5
    b = waiting.take()
    waiting.add(event(A, "disconnect", "n1"))
    assert b is not None
    assert waiting.behind(b) == (f"watch is behind: container {B[:12]} waited "
                                 f"{LAG_S + 1.5:.1f} s; 1 event(s) of 1 container(s) waiting, "
                                 "the oldest 0.0 s")
    assert waiting.behind(b) is None
    clock.now += LAG_EVERY_S
    assert waiting.behind(b) is not None


def test_a_process_is_known_by_its_pid_and_start() -> None:
    mine = backlog.process_start(os.getpid())
    assert isinstance(mine, int) and mine <= backlog.ticks()
    assert Known(os.getpid(), mine, True).alive()
    assert not Known(os.getpid(), mine + 1, True).alive()  # the pid reused
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/ns/net").exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert backlog.process_start(proc.pid) is None  # a zombie: not waited for yet
    proc.wait()
    assert backlog.process_start(proc.pid) is None
    assert not Known(proc.pid, mine, True).alive()


def test_a_process_newer_than_podmans_answer_is_refused() -> None:
    answered = backlog.ticks()
    backlog.not_newer(os.getpid(), answered)  # older than the answer: the one podman named
    mine = backlog.process_start(os.getpid())
    assert mine is not None
    with pytest.raises(backlog.Stale):
        backlog.not_newer(os.getpid(), mine - 1)  # answered before it started: pid reused
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    with pytest.raises(NoNamespace, match="does not exist"):
        backlog.not_newer(proc.pid, answered)


# --- watch's workers (cli.py) on the backlog, podman stood in for ------------


@pytest.fixture
def quiet(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(log, "_to_syslog", [False])


def no_podman(ref: str, timeout: float = 0) -> containers.Target:
    raise AssertionError("podman asked")


class Worker:
    """One of watch's workers on `waiting`, until close()."""

    def __init__(self, waiting: Backlog) -> None:
        self.waiting = waiting
        self.thread = threading.Thread(target=cli._work, args=(waiting,))
        self.thread.start()

    def drain(self) -> None:
        """Until every event given has been handled."""
        while self.waiting.lag()[0] or self.waiting._busy:
            self.thread.join(0.01)

    def close(self) -> None:
        self.drain()
        self.waiting.close()
        self.thread.join(5)


def run_one(waiting: Backlog) -> None:
    Worker(waiting).close()


@pytest.mark.usefixtures("quiet")
def test_the_events_of_a_container_gone_since_are_dropped_without_podman(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(containers, "find", no_podman)
    waiting = Backlog()
    for e in (event(A, "start"), event(A, "connect", "n1"), event(A, "died")):
        waiting.add(e)
    # B's process (as watch last saw it) is gone: its network event is stale.
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    waiting.remember(B, Known(proc.pid, 1, True))
    waiting.add(event(B, "disconnect", "n1"))
    run_one(waiting)
    assert waiting.stale == 3  # the ends themselves ask for nothing
    assert capsys.readouterr() == ("", "")


@pytest.mark.usefixtures("quiet")
def test_a_container_without_a_mode_is_asked_about_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []

    def find(ref: str, timeout: float = 0) -> containers.Target:
        asked.append(ref)
        return containers.Target(ref, os.getpid(), ref)

    monkeypatch.setattr(containers, "find", find)
    waiting = Backlog()
    worker = Worker(waiting)
    waiting.add(event(A, "start"))
    worker.drain()
    waiting.add(event(A, "connect", "n1"))
    worker.close()
    assert asked == [A]


@pytest.mark.parametrize("gone", [containers.Gone("no such container"),
                                  backlog.Stale("process 7 is newer than podman's answer")])
@pytest.mark.usefixtures("quiet")
def test_a_container_that_exits_meanwhile_is_an_info_line(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        gone: Exception) -> None:
    def find(ref: str, timeout: float = 0) -> containers.Target:
        raise gone

    monkeypatch.setattr(containers, "find", find)
    waiting = Backlog()
    waiting.add(event(A, "connect", "n1"))
    run_one(waiting)
    out, err = capsys.readouterr()
    assert (out, err) == (f"container {A[:12]}: gone before watch came to it ({gone})\n", "")
    assert waiting.stale == 1


@pytest.mark.usefixtures("quiet")
def test_any_other_failure_is_an_error_line(monkeypatch: pytest.MonkeyPatch,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    def find(ref: str, timeout: float = 0) -> containers.Target:
        raise HookError("podman inspect: no answer in 15 s")

    monkeypatch.setattr(containers, "find", find)
    waiting = Backlog()
    waiting.add(event(A, "start"))
    run_one(waiting)
    assert capsys.readouterr() == (
        "", f"oci-multihome-hook: container {A[:12]}: podman inspect: no answer in 15 s\n")
    assert waiting.stale == 0


def test_watch_without_podman_says_so_in_one_line(tmp_path: object) -> None:
    env = {**os.environ, "PATH": str(tmp_path), "_CONTAINERS_USERNS_CONFIGURED": "1"}
    proc = subprocess.run([sys.executable, "-c", "import sys; from multihome_hook.cli import "
                           "main; sys.exit(main(['watch']))"],
                          env=env, capture_output=True, text=True, timeout=30)
    assert (proc.returncode, proc.stdout, proc.stderr) == (
        2, "", "oci-multihome-hook: podman is not on PATH: watch follows its events\n")


@pytest.mark.usefixtures("quiet")
def test_watch_says_what_it_did_when_stopped(monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    def events() -> Iterator[PodmanEvent]:
        yield event(A, "start")
        yield event(A, "died")
        raise KeyboardInterrupt  # ^C

    monkeypatch.setattr(containers, "events", events)
    monkeypatch.setattr(containers, "find",  # no mode (if taken before its end came)
                        lambda ref, timeout=0: containers.Target(ref, os.getpid(), ref))
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    assert cli._watch(argparse.Namespace()) == OK
    out, err = capsys.readouterr()
    assert out.startswith("watch stopped: 2 event(s) read, "), out
    assert err == ""
