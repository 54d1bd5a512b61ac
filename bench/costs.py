"""What the hook costs: `make bench`, in two steps.

`python -m bench.costs podman4` runs inside the podman 4 lab (Debian 12,
podman 4.3; testlab/rootlab.py, as `make demo` does):
1. `podman run --rm` of a busybox rootfs without the hook and with it,
   interleaved in one session (each round runs every variant, in a rotating
   order), so that drift hits all of them alike: two networks with each mode;
   one network and `--network host` with a host-wide default (containers.conf
   `annotations`), each compared with its own plain run.
2. The hook alone on a prepared OCI state, for each hook given (the newest
   set's and the RHEL 9 set's): wall time and peak RSS against its own bare
   interpreter (`python -I -c pass`), for `--network host` and for fake
   containers with 1, 2, 8 and 32 networks.

`python -m bench.costs labs` then runs the podman 5 and podman 6 labs (the
deb's hook on each Debian's python3): bridge + macvlan with each mode
against the plain run, under crun and under runc; and writes
bench/latest.json with the podman 4 lab's results, and prints the tables.
Run as root; the labs need the deb (`make deb`) and their roots (`make roots`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from multihome_hook.modes import FIXES
from testlab import commands, debs, fakens, labnet, rootlab
from testlab.roots import PODMAN5, PODMAN6, Stack

MODES = tuple(m.name for m in FIXES)
HOST_WIDE = "io.multihome.mode=source-routing"
# Each variant of `podman run`: (networks, the per-container mode or None,
# the host-wide default or None, the plain run it is compared with).
VARIANTS = {
    "plain": ("two", None, None, "plain"),
    **{mode: ("two", mode, None, "plain") for mode in MODES},
    "one network, plain": ("one", None, None, "one network, plain"),
    "one network, host-wide": ("one", None, HOST_WIDE, "one network, plain"),
    "host network, plain": ("host", None, None, "host network, plain"),
    "host network, host-wide": ("host", None, HOST_WIDE, "host network, plain"),
}
TARGETS = {"loose": 1.05, "one-default": 1.10, "source-routing": 1.10,
           "one network, host-wide": 1.03, "host network, host-wide": 1.03}
# Issue 23: every mode in the podman 5 and 6 labs; the hook alone with two
# networks against its bare interpreter; 32 networks against 2.
LAB_TARGET, HOOK_TARGET, SCALE_TARGET = 1.10, 2.5, 1.5
RESULTS = commands.REPO / "bench" / "latest.json"


def summary(samples: Sequence[float]) -> dict[str, float]:
    """Median and spread (10th-90th percentile) in milliseconds."""
    deciles = statistics.quantiles(samples, n=10)
    return {"median_ms": round(statistics.median(samples) * 1000, 1),
            "p10_ms": round(deciles[0] * 1000, 1), "p90_ms": round(deciles[-1] * 1000, 1),
            "runs": len(samples)}


# One round: every variant once, in the order given -> seconds per variant.
Round = Callable[[Sequence[str]], dict[str, float]]


def interleaved(names: Sequence[str], runs: int, run_round: Round,
                baseline: Callable[[str], str]) -> dict[str, dict[str, float]]:
    """`runs` rounds, each in a rotated order; a variant's ratio is to its
    baseline's median."""
    samples: dict[str, list[float]] = {name: [] for name in names}
    for i in range(runs):
        for name, seconds in run_round([*names[i % len(names):], *names[:i % len(names)]]).items():
            samples[name].append(seconds)
    rows = {}
    for name, s in samples.items():
        plain = statistics.median(samples[baseline(name)])
        rows[name] = {**summary(s), "ratio": round(statistics.median(s) / plain, 3),
                      "added_ms": round((statistics.median(s) - plain) * 1000, 1)}
    return rows


def bench_podman(runs: int) -> dict[str, dict[str, float]]:
    """Every variant, interleaved; ratios to the plain run of its own networks."""
    podman = rootlab.here().using(runtime="runc")
    hooks = podman.hooks_dir()
    # The plain runs' hooks: the lab's own rp_filter hook, which the others run too.
    no_hooks = podman.hooks_dir()
    podman.path(f"{no_hooks}/{rootlab.HOOK_JSON.name}").unlink()
    nets = [labnet.BRIDGE_A.name, labnet.BRIDGE_B.name]
    networks = {"two": nets, "one": nets[:1], "host": ["host"]}
    argvs = {}
    for name, (which, mode, default, _) in VARIANTS.items():
        runner = podman.using(hooks=no_hooks if mode is None and default is None else hooks,
                              annotations=[] if default is None else [default])
        annotations = {} if mode is None else {"io.multihome.mode": mode}
        argvs[name] = runner.podman_argv(
            *runner.run_argv(networks[which], annotations, extra=["--rm"]), "true")
    return timed_rounds(podman, argvs, runs, lambda name: VARIANTS[name][3])


# Times command lines inside a root lab (one nsenter per round, not per
# run): a JSON list of argv on stdin, a JSON list of seconds out.
_LAB_TIMER = """\
import json, subprocess, sys, time
took = []
for argv in json.load(sys.stdin):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    took.append(time.perf_counter() - start)
print(json.dumps(took))
"""
LAB_RUNTIMES = ("crun", "runc")


def timed_rounds(lab: rootlab.Lab, argvs: dict[str, list[str]], runs: int,
                 baseline: Callable[[str], str]) -> dict[str, dict[str, float]]:
    """Each command line of `argvs` run in the lab, interleaved (after one
    round of warm-up: caches, first-run set-up)."""
    def run_round(order: Sequence[str]) -> dict[str, float]:
        out = lab.run("python3", "-I", "-c", _LAB_TIMER,
                      stdin=json.dumps([argvs[name] for name in order]), timeout=600)
        return dict(zip(order, json.loads(out.stdout)))

    run_round(list(argvs))
    return interleaved(list(argvs), runs, run_round, baseline)


def bench_lab(stack: Stack, runs: int, deb: Path) -> tuple[dict[str, str],
                                                           dict[str, dict[str, float]]]:
    """A root lab's versions, and bridge + macvlan runs: "RUNTIME, plain"
    and "RUNTIME, MODE", interleaved, each mode against its runtime's plain
    run. The hook is the deb's JSON and program; --hooks-dir leaves the
    lab's own rp_filter hook (scaffolding, in the default dir) out of every run."""
    stack.ensure()
    with rootlab.running(stack, deb) as lab:
        versions = {name: lab.run(*argv).stdout.split("\n")[0].split()[-1]
                    for name, argv in (("podman", ["podman", "--version"]),
                                       ("netavark", ["/usr/lib/podman/netavark", "--version"]),
                                       ("crun", ["crun", "--version"]),
                                       ("runc", ["runc", "--version"]),
                                       ("python", ["python3", "--version"]))}
        lab.sh("mkdir -p /tmp/bench/hooks /tmp/bench/no-hooks && cp "
               "/usr/share/containers/oci/hooks.d/oci-multihome-hook.json /tmp/bench/hooks/")
        nets = [labnet.BRIDGE_A.name, labnet.MACVLAN.name]
        argvs = {}
        for runtime in LAB_RUNTIMES:
            for mode in (None, *MODES):
                annotations = {} if mode is None else {"io.multihome.mode": mode}
                runner = lab.using(hooks=Path("/tmp/bench/" + ("hooks" if mode else "no-hooks")))
                argvs[f"{runtime}, {mode or 'plain'}"] = runner.podman_argv(
                    *runner.run_argv(nets, annotations, runtime, ["--rm"]), "true")
        rows = timed_rounds(lab, argvs, runs, lambda name: f"{name.split(',')[0]}, plain")
    return versions, rows


def _hook_env() -> dict[str, str]:
    """The environment podman gives the hook: the JSON's `env`, nothing else
    (so no PYTHONDONTWRITEBYTECODE or the like from the caller's shell)."""
    spec = json.loads(rootlab.HOOK_JSON.read_text())
    return dict(entry.split("=", 1) for entry in spec["hook"]["env"])


HOOK_ENV = _hook_env()


def _timed(argv: Sequence[str], stdin: Path) -> float:
    """Wall time (s) of one process, with the hook's environment."""
    with stdin.open("rb") as state:
        start = time.perf_counter()
        code = subprocess.call(argv, stdin=state, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, env=HOOK_ENV)
        elapsed = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{' '.join(argv)} < {stdin} exited {code}")
    return elapsed


def _interpreter(hook: Path) -> str:
    """The interpreter a console script runs on (its #! line)."""
    return hook.read_text().splitlines()[0][2:].split()[0]


# The floor of a route mode: the interpreter, and importing what it needs of
# pyroute2 (netlink.py imports its message classes, which import socket,
# threading, typing, collections).
FLOOR = "route modes' imports alone"
_IMPORTS = "import multihome_hook.netlink"


# The kernel tears a deleted namespace down in the background (tens of ms
# of CPU for 32 veth pairs, on a machine of 2 cores): each round builds its
# namespaces before it times anything and lets the last round's teardown
# end first, so that no run is timed against either.
SETTLE_S = 1.0


def bench_hook(hook: Path, runs: int, sizes: Sequence[int]) -> dict[str, dict[str, float]]:
    """The hook alone, interleaved with its own bare interpreter: each row's
    ratio is to `python -I -c pass` of the same interpreter."""
    state = Path(tempfile.mkdtemp(prefix="bench.")) / "state.json"
    bare = [_interpreter(hook), "-I", "-c", "pass"]
    # Each row: a command line, or the hook's (mode, networks); no networks:
    # a --network host container, the bench's own namespace.
    rows: dict[str, list[str] | tuple[str, int | None]] = {
        "python -I -c pass": bare, FLOOR: [*bare[:-1], _IMPORTS],
        "any mode, --network host": ("source-routing", None),
        **{f"{mode}, {size} network{'s' if size > 1 else ''}": (mode, size)
           for size in sizes for mode in MODES}}

    def run_round(order: Sequence[str]) -> dict[str, float]:
        took = {}
        with contextlib.ExitStack() as namespaces:
            # Each run on a namespace as podman leaves it: a run that
            # changed it would leave the next one with nothing to do.
            pids = {name: namespaces.enter_context(
                        fakens.fake_container(f"mhbench{os.getpid()}-{i}", row[1])).pid
                    for i, (name, row) in enumerate(rows.items())
                    if isinstance(row, tuple) and row[1] is not None}
            time.sleep(SETTLE_S)
            _timed(bare, Path("/dev/null"))  # the first start after a pause is slower
            for name in order:
                row = rows[name]
                if isinstance(row, list):
                    took[name] = _timed(row, Path("/dev/null"))
                    continue
                state.write_text(json.dumps({
                    "ociVersion": "1.0.2", "id": "b" * 64, "pid": pids.get(name, os.getpid()),
                    "annotations": {"io.multihome.mode": row[0]}}))
                took[name] = _timed([str(hook)], state)
        time.sleep(SETTLE_S)
        return took

    try:
        return interleaved(list(rows), runs, run_round, lambda _: "python -I -c pass")
    finally:
        state.unlink(missing_ok=True)
        state.parent.rmdir()


def table(title: str, rows: dict[str, dict[str, float]], *extra: str) -> str:
    lines = [title, f"  {'':<30} {'median':>8} {'p10':>8} {'p90':>8}"
             + "".join(f" {e:>9}" for e in extra)]
    for name, row in rows.items():
        lines.append(f"  {name:<30} {row['median_ms']:>6.1f}ms {row['p10_ms']:>6.1f}ms "
                     f"{row['p90_ms']:>6.1f}ms" + "".join(f" {row[e]:>9}" for e in extra))
    return "\n".join(lines)


def side_by_side(title: str, rows: dict[str, dict[str, float]]) -> str:
    """A root lab's crun and runc columns."""
    lines = [title, f"  {'':<16}" + "".join(f" {r + ' median':>13} {'ratio':>6} {'added':>8}"
                                            for r in LAB_RUNTIMES)]
    for mode in ("plain", *MODES):
        cells = []
        for runtime in LAB_RUNTIMES:
            row = rows[f"{runtime}, {mode}"]
            cells.append(f" {row['median_ms']:>11.1f}ms {row['ratio']:>6.3f} "
                         f"{row['added_ms']:>6.1f}ms")
        lines.append(f"  {mode:<16}" + "".join(cells))
    return "\n".join(lines)


def targets(podman4: dict[str, dict[str, float]], labs: dict[str, dict[str, object]],
            hooks: dict[str, dict[str, dict[str, float]]]) -> dict[str, dict[str, object]]:
    """Each target: its measured value, its limit, met or not."""
    found: dict[str, tuple[float, float]] = {
        f"podman 4, {m}": (podman4[m]["ratio"], r) for m, r in TARGETS.items()}
    for stack, lab_result in labs.items():
        rows = lab_result["podman_run"]
        assert isinstance(rows, dict)
        for runtime in LAB_RUNTIMES:
            for mode in MODES:
                found[f"{stack}, {runtime}, {mode}"] = (rows[f"{runtime}, {mode}"]["ratio"],
                                                        LAB_TARGET)
    for name, rows in hooks.items():
        for mode in MODES:
            two = rows[f"{mode}, 2 networks"]
            found[f"hook alone ({name}), {mode}, 2 networks"] = (two["ratio"], HOOK_TARGET)
            found[f"hook alone ({name}), {mode}, 32 networks / 2"] = (
                round(rows[f"{mode}, 32 networks"]["median_ms"] / two["median_ms"], 2),
                SCALE_TARGET)
    return {name: {"value": value, "max": limit, "met": value <= limit}
            for name, (value, limit) in found.items()}


def run_podman4(args: argparse.Namespace) -> int:
    """Inside the podman 4 lab: its podman, and the hook alone."""
    hooks = {name: Path(path) for name, path in (h.split("=", 1) for h in args.hook)}
    result = {"machine": {"kernel": platform.release(), "cpus": os.cpu_count(),
                          "podman": commands.run("podman", "--version").stdout.split()[-1]},
              "podman_run": bench_podman(args.runs),
              "hook_alone": {name: {"hook": str(path),
                                    "python": commands.run(_interpreter(path), "--version")
                                    .stdout.split()[-1],
                                    "rows": bench_hook(path, args.runs, (1, 2, 8, 32))}
                             for name, path in hooks.items()}}
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


def run_labs(args: argparse.Namespace) -> int:
    """The podman 5 and 6 labs, then everything written and printed."""
    deb = args.deb or debs.find_deb()
    if deb is None:
        raise SystemExit(f"no dist/{debs.DEB_GLOB} for the labs: make deb")
    podman4 = json.loads(args.podman4.read_text())
    labs: dict[str, dict[str, object]] = {}
    for stack in (PODMAN5, PODMAN6):
        versions, rows = bench_lab(stack, args.runs, deb)
        labs[stack.name] = {"versions": {**versions, "deb": deb.name}, "podman_run": rows}
    hooks = {name: h["rows"] for name, h in podman4["hook_alone"].items()}
    result = {
        "schema": 3,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "podman4_lab": podman4,
        **{f"{name}_lab": value for name, value in labs.items()},
        "targets": targets(podman4["podman_run"], labs, hooks),
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(f"podman 4 lab (podman {podman4['machine']['podman']}), podman run --rm, "
                f"interleaved (two networks unless named; host-wide: containers.conf "
                f"{HOST_WIDE}):", podman4["podman_run"], "ratio", "added_ms"))
    for name, lab_result in labs.items():
        v = lab_result["versions"]
        assert isinstance(v, dict) and isinstance(lab_result["podman_run"], dict)
        print(side_by_side(f"\n{name} lab (podman {v['podman']}, netavark {v['netavark']}, "
                           f"{v['python']}, the deb's hook), bridge + macvlan, {args.runs} "
                           "interleaved runs each:", lab_result["podman_run"]))
    for name, h in podman4["hook_alone"].items():
        print(table(f"\nthe hook alone, {name} (Python {h['python']}), against its bare "
                    "interpreter:", h["rows"], "ratio"))
    print("\ntargets:")
    for name, t in result["targets"].items():
        print(f"  {name:<52} {t['value']:>6} <= {t['max']}: {'met' if t['met'] else 'MISSED'}")
    print(f"written to {args.output}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    sub = parser.add_subparsers(dest="step", required=True)
    p4 = sub.add_parser("podman4", help="inside the podman 4 lab")
    p4.add_argument("--runs", type=int, default=30, help="runs per variant (default 30)")
    p4.add_argument("--hook", action="append", default=[], metavar="NAME=PATH",
                    help="a hook to time alone (repeatable)")
    p4.add_argument("--output", type=Path, required=True)
    p4.set_defaults(run=run_podman4)
    labs = sub.add_parser("labs", help="the podman 5 and 6 labs, then the results")
    labs.add_argument("--runs", type=int, default=30, help="runs per variant (default 30)")
    labs.add_argument("--podman4", type=Path, required=True, help="the podman4 step's output")
    labs.add_argument("--deb", type=Path, help=f"default: the newest dist/{debs.DEB_GLOB}")
    labs.add_argument("--output", type=Path, default=RESULTS)
    labs.set_defaults(run=run_labs)
    args = parser.parse_args()
    result: int = args.run(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
