"""`watch` on a busy host (issue 31): `make bench-churn`, in the podman 4 lab.

Four containers cycle, each in a thread of its own, as fast as podman goes:
started on two networks with a random mode (the hook fixes them at start),
then at random: a third network connected and disconnected, the second
disconnected and connected again, or a restart; then removed. One `watch`
runs throughout. After each podman command the container's namespace is
read until it is right (route modes: one IPv4 default in main; loose:
effective rp_filter 2 on every interface): the time from the command's
return (podman has written its event by then) to that, per action. Before
its removal each container is read once more: a late event must not have
undone it. watch's RSS and open descriptors at its start and end, and the
count of stale events (of containers gone when watch came to them).

`python -m bench.churn --lifecycles N [--watch-src DIR]` inside the
podman 4 lab (`make bench-churn CHURN_N=N [CHURN_WATCH_SRC=DIR]`): DIR is
another tree's src/ whose `watch` to measure (main's, for "before").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from multihome_hook.modes import FIXES, LOOSE, MODE_KEY
from multihome_hook.netns import enter
from testlab import commands, labnet, rootlab
from testlab.watch import Watch

MODES = tuple(m.name for m in FIXES)
ACTIONS = ("third", "second", "restart")
CONTAINERS = 4
RIGHT_WITHIN_S = 10.0  # a namespace still wrong after this is unfixed
POLL_S = 0.01
SAMPLE_S = 30.0  # watch's RSS and descriptors, as the run goes
# watch's lines about a container gone before it came to it: errors before
# issue 31, info lines after; and its summary when stopped.
STALE = re.compile(r"no such container|not running|does not exist|gone")
SUMMARY = re.compile(r"(\d+) stale")
# Runs `watch` from the source tree given as its argument.
WATCH_CODE = ("import sys; sys.path.insert(0, sys.argv[1]); "
              "from multihome_hook.cli import main; sys.exit(main(['watch']))")


def _read_state() -> tuple[int, dict[str, int]]:
    """In a namespace: IPv4 default routes in main, and rp_filter per conf."""
    with open("/proc/thread-self/net/route") as routes:
        defaults = sum(1 for line in routes.readlines()[1:]
                       if line.split()[1] == "00000000" and line.split()[7] == "00000000")
    conf = "/proc/sys/net/ipv4/conf"
    rp = {}
    for name in os.listdir(conf):
        with open(f"{conf}/{name}/rp_filter") as f:
            rp[name] = int(f.read())
    return defaults, rp


def state(pid: int) -> tuple[int, dict[str, int]] | None:
    """The namespace of `pid` as _read_state() sees it (under the
    namespace's lock: never half-applied), None if its process is gone."""
    found: list[tuple[int, dict[str, int]] | None] = [None]

    def thread() -> None:
        try:
            fd = enter(pid)
        except Exception:  # gone: the caller says so
            return
        try:
            found[0] = _read_state()
        except OSError:
            pass
        finally:
            os.close(fd)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    return found[0]


def right(mode: str, found: tuple[int, dict[str, int]] | None) -> bool:
    if found is None:
        return False
    defaults, rp = found
    if mode == LOOSE.name:
        return all(max(rp.get("all", 0), value) == 2 for name, value in rp.items()
                   if name not in ("all", "default", "lo"))
    return defaults == 1


class Cycler:
    """One of the four containers, cycling through lifecycles."""

    def __init__(self, lab: rootlab.Lab, nets: Sequence[str], index: int,
                 rng: random.Random, results: Results, actions: Sequence[str]) -> None:
        self.lab, self.nets, self.actions = lab, nets, actions
        self.name = f"mhchurn{os.getpid()}c{index}"
        self.rng, self.results = rng, results

    def pid(self) -> int:
        return int(self.lab.podman("inspect", "-f", "{{.State.Pid}}", self.name).stdout)

    def converge(self, action: str, mode: str, pid: int) -> None:
        """Until the namespace is right: its time, or unfixed."""
        start = time.monotonic()
        first = found = state(pid)
        while not right(mode, found):
            if time.monotonic() - start > RIGHT_WITHIN_S:
                self.results.unfixed(action, mode)
                return
            time.sleep(POLL_S)
            found = state(pid)
        self.results.took(action, mode, time.monotonic() - start, first)

    def lifecycle(self) -> None:
        mode = self.rng.choice(MODES)
        p = self.lab.podman
        p(*self.lab.run_argv(self.nets[:2], {MODE_KEY: mode},
                             extra=["-d", "--name", self.name]), "sleep", "600")
        try:
            pid = self.pid()
            self.converge("start", mode, pid)
            action = self.rng.choice(self.actions)
            if action == "third":
                p("network", "connect", self.nets[2], self.name)
                self.converge("connect", mode, pid)
                p("network", "disconnect", self.nets[2], self.name)
                self.converge("disconnect", mode, pid)
            elif action == "second":
                p("network", "disconnect", self.nets[1], self.name)
                self.converge("disconnect", mode, pid)
                p("network", "connect", self.nets[1], self.name)
                self.converge("connect", mode, pid)
            else:
                p("restart", "-t", "0", self.name)
                pid = self.pid()
                self.converge("restart", mode, pid)
            if not right(mode, state(pid)):  # a late event undid it
                self.results.unfixed("undone", mode)
        finally:
            p("rm", "-f", "-t", "0", self.name, check=False)

    def run(self, count: int) -> None:
        for _ in range(count):
            self.lifecycle()
            self.results.lifecycles += 1


class Results:
    """Each action's time to right, the slow ones listed (action, mode, ms,
    what was read first)."""

    def __init__(self, slow_s: float) -> None:
        self.slow_s = slow_s
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.wrong: list[tuple[str, str]] = []
        self.slow: list[tuple[str, str, int, str]] = []
        self.lifecycles = 0

    def took(self, action: str, mode: str, seconds: float, first: object) -> None:
        with self.lock:
            self.times.setdefault(action, []).append(seconds)
            if seconds > self.slow_s:
                self.slow.append((action, mode, round(seconds * 1000), str(first)))

    def unfixed(self, action: str, mode: str) -> None:
        with self.lock:
            self.wrong.append((action, mode))


def resources(pid: int) -> dict[str, int]:
    """watch's resident memory (kB) and open descriptors."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines()
               if line.startswith("VmRSS:"))
    return {"rss_kb": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def sample(pid: int, results: Results, threads: list[threading.Thread]) -> list[dict[str, int]]:
    """watch's resources every SAMPLE_S until the threads end: flat or not."""
    found = []
    while any(t.is_alive() for t in threads):
        found.append({"lifecycles": results.lifecycles, **resources(pid)})
        for t in threads:
            t.join(SAMPLE_S / len(threads))
    return found


def quantile(samples: list[float], q: float) -> float:
    return round(sorted(samples)[min(len(samples) - 1, int(q * len(samples)))] * 1000, 1)


def churn(lifecycles: int, watch_src: Path, seed: int, actions: Sequence[str],
          log: Path | None, slow_s: float) -> dict[str, object]:
    lab = rootlab.here()
    lab = lab.using(runtime="runc", hooks=lab.hooks_dir())
    nets = [net.name for net in (labnet.BRIDGE_A, labnet.BRIDGE_B, labnet.BRIDGE_C)]
    watch = Watch([sys.executable, "-c", WATCH_CODE, str(watch_src)], lab.env)
    try:
        time.sleep(1)
        at_start = resources(watch.proc.pid)
        results = Results(slow_s)
        rng = random.Random(seed)
        cyclers = [Cycler(lab, nets, i, random.Random(rng.random()), results, actions)
                   for i in range(CONTAINERS)]
        shares = [lifecycles // CONTAINERS + (i < lifecycles % CONTAINERS)
                  for i in range(CONTAINERS)]
        load = [os.getloadavg()[0]]  # the machine is shared: what else ran
        began = time.monotonic()
        threads = [threading.Thread(target=c.run, args=(n,)) for c, n in zip(cyclers, shares)]
        for t in threads:
            t.start()
        samples = sample(watch.proc.pid, results, threads)
        elapsed = time.monotonic() - began
        load.append(os.getloadavg()[0])
        time.sleep(3)  # its last events handled
        at_end = resources(watch.proc.pid)
    finally:
        watch.stop()
    time.sleep(0.5)  # its last lines read
    lines = watch.seen + list(iter_queue(watch))
    if log is not None:
        log.write_text("".join(line + "\n" for line in lines))
    summary = [m for m in map(SUMMARY.search, lines) if m]
    every = [s for samples in results.times.values() for s in samples]
    return {
        "lifecycles": results.lifecycles, "seconds": round(elapsed, 1),
        "lifecycles_per_s": round(results.lifecycles / elapsed, 2),
        "load_average_1min": {"start": load[0], "end": load[1], "cpus": os.cpu_count()},
        "event_to_right": {"p50_ms": quantile(every, 0.5), "p99_ms": quantile(every, 0.99),
                           "max_ms": quantile(every, 1.0), "samples": len(every)},
        "per_action": {a: {"p50_ms": quantile(s, 0.5), "p99_ms": quantile(s, 0.99),
                           "samples": len(s)} for a, s in sorted(results.times.items())},
        "unfixed": len(results.wrong), "unfixed_by": sorted(set(results.wrong)),
        "slow": results.slow[:50],
        "watch_start": at_start, "watch_end": at_end,
        "watch_during": samples,
        "stale_events": (int(summary[-1].group(1)) if summary
                         else sum(1 for line in lines if STALE.search(line))),
        "watch_error_lines": sum(1 for line in lines if line.startswith("oci-multihome-hook: ")
                                 and not line.startswith("oci-multihome-hook: warning")),
        "watch_lag_lines": [line for line in lines if "behind" in line][:20],
        "watch_last_lines": lines[-5:],
    }


def iter_queue(watch: Watch) -> list[str]:
    found = []
    while not watch.lines.empty():
        found.append(watch.lines.get())
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--lifecycles", type=int, default=200, help="default 200")
    parser.add_argument("--watch-src", type=Path, default=commands.REPO / "src",
                        help="the src/ of the watch to measure (default: this checkout's)")
    parser.add_argument("--seed", type=int, default=31)
    parser.add_argument("--actions", default=",".join(ACTIONS),
                        help=f"what a lifecycle may do (default: {','.join(ACTIONS)})")
    parser.add_argument("--output", type=Path, help="the results (JSON)")
    parser.add_argument("--watch-log", type=Path, help="watch's output")
    parser.add_argument("--slow-ms", type=float, default=500,
                        help="list the actions slower than this (default 500)")
    args = parser.parse_args(argv)
    result = {"watch_src": str(args.watch_src), **churn(
        args.lifecycles, args.watch_src, args.seed, args.actions.split(","), args.watch_log,
        args.slow_ms / 1000)}
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
