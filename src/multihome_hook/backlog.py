"""What `watch` has yet to do: podman's events, folded per container.

A busy host writes events faster than containers are fixed, and a fix is
always "converge to what the namespace and podman say now": every event of
a container that waits is folded into one Pending (the newest state wins),
handled by one run. A container whose last event is its end (died,
removed) is dropped without asking podman. Containers are handled by a few
workers at once, each container by one at a time (the namespace lock keeps
containers that share a namespace in turn); events that arrive meanwhile
wait for the next run, so every change gets a run that starts after it.
"""

from __future__ import annotations

import os
import threading
import time

from .errors import NoNamespace
from .records import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from .models import PodmanEvent

START, CONNECT = "start", "connect"
ENDS = frozenset({"died", "remove"})
# How late a container may be handled before the backlog is logged (at
# most every LAG_EVERY_S).
LAG_S, LAG_EVERY_S = 1.0, 10.0
# Containers remembered (pid, whether annotated) between their events:
# forgotten when removed; a host that loses events never grows past this.
REMEMBERED = 4096


class Stale(NoNamespace):
    """The container's pid is another, newer process's than podman's
    answer named: the container is gone (a restart brings its own start)."""


class Pending(Record):
    """A container's events not handled yet: `events` how many of those
    that ask for a run (a start, a connect, a disconnect), `since` when the
    first event arrived (monotonic), `started` a start among them and
    `ended` its end (died, removed) after the last start, `networks` each
    network's last status (connect, disconnect), in the order they came."""

    __slots__ = ("id", "since", "events", "started", "ended", "networks")

    def __init__(self, id: str, since: float) -> None:
        self.id, self.since, self.events = id, since, 0
        self.started = self.ended = False
        self.networks: dict[str, str] = {}

    def add(self, event: PodmanEvent) -> None:
        if event.status in ENDS:
            self.ended = True
            return
        self.events += 1
        if event.status == START:
            self.started, self.ended = True, False
        elif event.network:
            self.networks.pop(event.network, None)  # to the end: the newest last
            self.networks[event.network] = event.status

    def connected(self) -> list[str]:
        """Networks whose last event is a connect."""
        return [n for n, status in self.networks.items() if status == CONNECT]

    def describe(self) -> str:
        """What happened, for the log line: "started, network N connected"."""
        return ", ".join([*(["started"] if self.started else []),
                          *(f"network {n} {s}ed" for n, s in self.networks.items())])


class Known(Record):
    """What watch learnt of a container the last time it asked podman:
    its process (pid and start time: a pid is reused, never with the same
    start), and `acts`: it is annotated with a mode that changes something
    (annotations never change for a container id)."""

    __slots__ = ("pid", "started", "acts")

    def __init__(self, pid: int, started: int | None, acts: bool) -> None:
        self.pid, self.started, self.acts = pid, started, acts

    def alive(self) -> bool:
        return self.started is not None and process_start(self.pid) == self.started


class Backlog:
    """Pending containers, in the order their first event came; the
    workers take() one, done() gives it back. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._cond = threading.Condition()
        self._waiting: dict[str, Pending] = {}
        self._busy: set[str] = set()
        self._known: dict[str, Known] = {}
        self._closed = False
        self._lag_said = -LAG_EVERY_S
        self.read = self.folded = self.stale = self.runs = 0

    def add(self, event: PodmanEvent) -> None:
        with self._cond:
            self.read += 1
            pending = self._waiting.get(event.id)
            if pending is None:
                pending = self._waiting[event.id] = Pending(event.id, self._clock())
            else:
                self.folded += 1
            pending.add(event)
            if event.status == "remove":
                self._known.pop(event.id, None)
            self._cond.notify()

    def take(self) -> Pending | None:
        """The oldest pending container no worker holds (waits for one);
        None once closed."""
        with self._cond:
            while not self._closed:
                for id, pending in self._waiting.items():
                    if id not in self._busy:
                        del self._waiting[id]
                        self._busy.add(id)
                        self.runs += 1
                        return pending
                self._cond.wait()
            return None

    def done(self, pending: Pending) -> None:
        with self._cond:
            self._busy.discard(pending.id)
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def dropped(self, pending: Pending) -> None:
        """`pending`'s events came for a container that was gone."""
        with self._cond:
            self.stale += pending.events

    def known(self, id: str) -> Known | None:
        with self._cond:
            return self._known.get(id)

    def remember(self, id: str, known: Known) -> None:
        with self._cond:
            if len(self._known) >= REMEMBERED and id not in self._known:
                self._known.clear()
            self._known[id] = known

    def lag(self) -> tuple[int, int, float]:
        """Events and containers waiting, and the oldest one's wait (s)."""
        with self._cond:
            pending = list(self._waiting.values())
        oldest = min((p.since for p in pending), default=self._clock())
        return sum(p.events for p in pending), len(pending), self._clock() - oldest

    def behind(self, pending: Pending) -> str | None:
        """The line that says watch lags, if `pending` waited too long and
        none was said lately."""
        now = self._clock()
        with self._cond:
            if now - pending.since <= LAG_S or now - self._lag_said < LAG_EVERY_S:
                return None
            self._lag_said = now
        events, count, oldest = self.lag()
        return (f"watch is behind: container {pending.id[:12]} waited {now - pending.since:.1f} s;"
                f" {events} event(s) of {count} container(s) waiting, the oldest "
                f"{oldest:.1f} s")

    def summary(self) -> str:
        return (f"{self.read} event(s) read, {self.folded} folded into another of their "
                f"container's, {self.stale} stale (their container gone), {self.runs} run(s)")


def process_start(pid: int) -> int | None:
    """When `pid`'s process started (clock ticks since boot), None if no
    live process has that pid: an exiting one drops its namespaces before
    it is a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        os.stat(f"/proc/{pid}/ns/net")
    except OSError:
        return None
    # After the command name, which may hold spaces and parentheses.
    fields = stat[stat.rindex(b")") + 2:].split()
    return None if fields[0] in (b"Z", b"X") else int(fields[19])


def ticks() -> int:
    """Now, in process_start()'s clock."""
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * os.sysconf("SC_CLK_TCK"))


def not_newer(pid: int, answered: int) -> None:
    """Raise Stale if `pid`'s process started after `answered` (ticks()),
    when podman's answer that named it came: the answer is then of an older
    process (a pid reused). Not "after it was asked": podman answers once a
    restart under way is done, with the new process.

    Called with the namespace of `pid` already pinned (opened): a pid's
    processes start in order, so one that started before `answered` and is
    there now was there when its namespace was opened."""
    started = process_start(pid)
    if started is None:
        raise NoNamespace(f"process {pid} does not exist (did it exit?)")
    if started > answered:
        raise Stale(f"process {pid} is newer than podman's answer (its pid reused?)")
