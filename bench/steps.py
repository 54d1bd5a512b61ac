"""Where one hook run's time goes, step by step (docs/performance.md).

`python -m bench.steps MODE NETWORKS [--runs N]`, as root inside a lab
(the Reproduce section of docs/performance.md shows how): for each run a
fake container (testlab/fakens.py) and a child process that imports the
hook's modules, enters the namespace and runs fix() with a timer around
each step; the medians are printed in milliseconds. The timers replace
functions in the child only, which then exits.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
import traceback
from collections.abc import Callable
from typing import Any

from testlab import fakens

# (row, module, attribute): the hook's steps, in the order they run.
STEPS = (
    ("/proc: uplinks", "snapshot", "uplinks"),
    ("sysctls", "snapshot", "read_rp_filter"),
    ("links", "snapshot", "read_links"),
    ("dump addresses", "netlink.RouteSocket", "addresses"),
    ("dump routes", "netlink.RouteSocket", "routes"),
    ("dump rules", "netlink.RouteSocket", "rules"),
    ("apply", "apply", "apply"),
    ("send (encode + kernel)", "netlink.RouteSocket", "_send"),
)


def _timed(times: dict[str, float], row: str, function: Callable[..., Any]) -> Callable[..., Any]:
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return function(*args, **kwargs)
        finally:
            times[row] = times.get(row, 0.0) + time.perf_counter() - start
    return timed


def _one_run(mode_name: str, pid: int) -> dict[str, float]:
    """In a child: the hook's imports, then fix() with every step timed."""
    import gc

    gc.disable()  # as the hook does
    start = time.perf_counter()
    from multihome_hook import apply, fix, modes, netlink, netns, snapshot
    times = {"imports": time.perf_counter() - start}
    owners = {"fix": fix, "snapshot": snapshot, "apply": apply,
              "netlink.RouteSocket": netlink.RouteSocket}
    for row, owner, name in STEPS:
        setattr(owners[owner], name, _timed(times, row, getattr(owners[owner], name)))
    for cls in (netlink._rtmsg, netlink._ifaddrmsg, netlink._fibmsg):
        cls.encode = _timed(times, "encode (pyroute2)", cls.encode)
    mode = modes.parse_mode(mode_name)
    mode.planner = _timed(times, "plan", mode.planner)
    start = time.perf_counter()
    netns.enter(pid)
    times["enter"] = time.perf_counter() - start
    start = time.perf_counter()
    fix.fix(fix.Fix(mode))
    times["fix, all of it"] = time.perf_counter() - start
    times["kernel (send - encode)"] = (times.get("send (encode + kernel)", 0.0)
                                       - times.get("encode (pyroute2)", 0.0))
    return times


def profile(mode: str, networks: int, runs: int) -> dict[str, float]:
    """Median milliseconds of each step over `runs` fresh fake containers."""
    samples: dict[str, list[float]] = {}
    for _ in range(runs):
        with fakens.fake_container(f"mhsteps{os.getpid()}", networks) as ns:
            read_end, write_end = os.pipe()
            child = os.fork()
            if child == 0:
                os.close(read_end)
                try:
                    os.write(write_end, json.dumps(_one_run(mode, ns.pid)).encode())
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            os.close(write_end)
            with os.fdopen(read_end, "rb") as result:
                data = result.read()
            _, status = os.waitpid(child, 0)
            if status != 0 or not data:
                raise RuntimeError(f"the profiled run failed (wait status {status})")
            for row, seconds in json.loads(data).items():
                samples.setdefault(row, []).append(seconds)
    return {row: round(1000 * statistics.median(s), 2) for row, s in samples.items()}


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.steps", description=__doc__)
    parser.add_argument("mode")
    parser.add_argument("networks", type=int)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    print(f"{args.mode}, {args.networks} networks, median of {args.runs} runs (ms):")
    for row, ms in profile(args.mode, args.networks, args.runs).items():
        print(f"  {row:28s} {ms:8.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
