"""What the hook costs: `make bench`.

1. `podman run --rm` of a busybox rootfs without the hook and with it,
   interleaved in one session (each round runs every variant, in a rotating
   order), so that drift hits all of them alike: two networks with each mode;
   one network and `--network host` with a host-wide default (containers.conf
   `annotations`), each compared with its own plain run.
2. The same in the podman 5 lab (testlab/rootlab.py: Debian 13, podman 5,
   the deb's hook on Debian's python3), bridge + macvlan with each mode
   against the plain run, under crun and under runc.
3. The hook alone on a prepared OCI state: wall time and peak RSS, for
   `--network host` and for fake containers with 1, 2, 8 and 32 networks.

Writes bench/latest.json and prints tables. Run as root; the podman 5 lab
needs the deb (`make deb`) and its root (`make roots`).
"""

from __future__ import annotations

import argparse
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

from . import commands, fakens, lab, rootlab
from .roots import PODMAN5

MODES = ("loose", "one-default", "source-routing")
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
    with lab.podman_env() as podman, \
            lab.networks(podman, [podman.slot.subnet(0), podman.slot.subnet(1)]) as nets:
        hooks = podman.hooks_dir(podmans_own_rp_filter=True)
        no_hooks = podman.workdir / "no-hooks"
        no_hooks.mkdir()
        host_wide = podman.with_default_annotations(HOST_WIDE)
        networks = {"two": nets, "one": nets[:1], "host": ["host"]}
        runners = {}
        for name, (which, mode, default, _) in VARIANTS.items():
            runner = podman if default is None else host_wide
            annotations = {} if mode is None else {"io.multihome.mode": mode}
            hooks_dir = no_hooks if mode is None and default is None else hooks
            runners[name] = (runner, runner.run_argv(networks[which], annotations, hooks_dir,
                                                     ["--rm"]))
        podman(*runners["plain"][1], "true")  # warm-up: caches, first-run set-up

        def run_round(order: Sequence[str]) -> dict[str, float]:
            took = {}
            for name in order:
                runner, argv = runners[name]
                start = time.perf_counter()
                runner(*argv, "true")
                took[name] = time.perf_counter() - start
            return took

        return interleaved(list(runners), runs, run_round, lambda name: VARIANTS[name][3])


# Times `podman` command lines inside the podman 5 lab (one nsenter per round,
# not per run): a JSON list of argv on stdin, a JSON list of seconds out.
_LAB_TIMER = """\
import json, subprocess, sys, time
took = []
for argv in json.load(sys.stdin):
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    took.append(time.perf_counter() - start)
print(json.dumps(took))
"""
P5_RUNTIMES = ("crun", "runc")


def bench_podman5(runs: int, deb: Path) -> tuple[dict[str, str], dict[str, dict[str, float]]]:
    """The podman 5 lab's versions, and bridge + macvlan runs: "RUNTIME,
    plain" and "RUNTIME, MODE", interleaved, each mode against its runtime's
    plain run. The hook is the deb's JSON and program; --hooks-dir leaves the
    lab's own rp_filter hook (scaffolding, in the default dir) out of every run."""
    PODMAN5.ensure()
    with rootlab.running(PODMAN5, deb) as lab5:
        versions = {name: lab5.run(*argv).stdout.split("\n")[0].split()[-1]
                    for name, argv in (("podman", ["podman", "--version"]),
                                       ("netavark", ["/usr/lib/podman/netavark", "--version"]),
                                       ("crun", ["crun", "--version"]),
                                       ("runc", ["runc", "--version"]))}
        lab5.sh("mkdir -p /tmp/bench/hooks /tmp/bench/no-hooks && cp "
                "/usr/share/containers/oci/hooks.d/oci-multihome-hook.json /tmp/bench/hooks/")
        nets = [rootlab.BRIDGE_A.name, rootlab.MACVLAN.name]
        argvs = {}
        for runtime in P5_RUNTIMES:
            for mode in (None, *MODES):
                annotations = {} if mode is None else {"io.multihome.mode": mode}
                hooks = "/tmp/bench/" + ("no-hooks" if mode is None else "hooks")
                argvs[f"{runtime}, {mode or 'plain'}"] = [
                    "podman", "--hooks-dir", hooks,
                    *lab5.run_argv(nets, annotations, runtime, ["--rm"]), "true"]

        def run_round(order: Sequence[str]) -> dict[str, float]:
            out = lab5.run("python3", "-I", "-c", _LAB_TIMER,
                           stdin=json.dumps([argvs[name] for name in order]), timeout=600)
            return dict(zip(order, json.loads(out.stdout)))

        run_round(list(argvs))  # warm-up
        rows = interleaved(list(argvs), runs, run_round,
                           lambda name: f"{name.split(',')[0]}, plain")
    return versions, rows


def _hook_env() -> dict[str, str]:
    """The environment podman gives the hook: the JSON's `env`, nothing else
    (so no PYTHONDONTWRITEBYTECODE or the like from the caller's shell)."""
    spec = json.loads(lab.HOOK_JSON.read_text())
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


def _peak_rss_kib(argv: Sequence[str], stdin: Path) -> int:
    """Peak RSS of one process. Measured by GNU time, a small process that
    forks it: the rusage of a child forked from this (large) Python process
    would report this process's RSS, copied at fork."""
    with tempfile.NamedTemporaryFile("r") as report, stdin.open("rb") as state:
        subprocess.run(["/usr/bin/time", "-f", "%M", "-o", report.name, *argv], stdin=state,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=HOOK_ENV,
                       check=True)
        return int(report.read().split()[-1])


def bench_hook(runs: int, sizes: Sequence[int]) -> dict[str, dict[str, float]]:
    hook = str(lab.hook_binary())
    results: dict[str, dict[str, float]] = {}
    state = commands.REPO / "bench" / ".state.json"
    state.parent.mkdir(exist_ok=True)
    bare = [sys.executable, "-I", "-c", "pass"]
    results["python -I -c pass"] = {
        **summary([_timed(bare, Path("/dev/null")) for _ in range(runs)]),
        "peak_rss_kib": _peak_rss_kib(bare, Path("/dev/null"))}
    state.write_text(json.dumps({"ociVersion": "1.0.2", "id": "b" * 64, "pid": os.getpid(),
                                 "annotations": {"io.multihome.mode": "source-routing"}}))
    results["any mode, --network host"] = {
        **summary([_timed([hook], state) for _ in range(runs)]),
        "peak_rss_kib": _peak_rss_kib([hook], state)}
    for size in sizes:
        for mode in MODES:
            # Each run on a namespace as podman leaves it: a run that changed
            # it would leave the next one with nothing to do.
            samples, rss = [], 0
            for run in range(runs + 1):
                with fakens.fake_container(f"mhbench{os.getpid()}n{size}", size) as ns:
                    state.write_text(json.dumps({
                        "ociVersion": "1.0.2", "id": "b" * 64, "pid": ns.pid,
                        "annotations": {"io.multihome.mode": mode}}))
                    if run < runs:
                        samples.append(_timed([hook], state))
                    else:
                        rss = _peak_rss_kib([hook], state)
            results[f"{mode}, {size} network{'s' if size > 1 else ''}"] = {
                **summary(samples), "peak_rss_kib": rss}
    state.unlink()
    return results


def table(title: str, rows: dict[str, dict[str, float]], *extra: str) -> str:
    lines = [title, f"  {'':<30} {'median':>8} {'p10':>8} {'p90':>8}"
             + "".join(f" {e:>12}" for e in extra)]
    for name, row in rows.items():
        lines.append(f"  {name:<30} {row['median_ms']:>6.1f}ms {row['p10_ms']:>6.1f}ms "
                     f"{row['p90_ms']:>6.1f}ms" + "".join(f" {row[e]:>12}" for e in extra))
    return "\n".join(lines)


def side_by_side(title: str, p5_rows: dict[str, dict[str, float]],
                 host_rows: dict[str, dict[str, float]]) -> str:
    """Podman 5's crun and runc columns, with the host's podman 4 ratio."""
    lines = [title, f"  {'':<16}" + "".join(f" {r + ' median':>13} {'ratio':>6} {'added':>8}"
                                            for r in P5_RUNTIMES)
             + f"   {'podman 4, runc':>14}"]
    for mode in ("plain", *MODES):
        cells = []
        for runtime in P5_RUNTIMES:
            row = p5_rows[f"{runtime}, {mode}"]
            cells.append(f" {row['median_ms']:>11.1f}ms {row['ratio']:>6.3f} "
                         f"{row['added_ms']:>6.1f}ms")
        lines.append(f"  {mode:<16}" + "".join(cells)
                     + f"   {host_rows[mode]['ratio']:>14.3f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=30, help="runs per variant (default 30)")
    parser.add_argument("--p5-runs", type=int, default=30,
                        help="runs per variant in the podman 5 lab (default 30)")
    parser.add_argument("--deb", type=Path, help=f"default: the newest dist/{rootlab.DEB_GLOB}")
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    deb = args.deb or rootlab.find_deb()
    if deb is None:
        parser.error(f"no dist/{rootlab.DEB_GLOB} for the podman 5 lab: make deb")
    podman_rows = bench_podman(args.runs)
    p5_versions, p5_rows = bench_podman5(args.p5_runs, deb)
    hook_rows = bench_hook(args.runs, (1, 2, 8, 32))
    result = {
        "schema": 2,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"kernel": platform.release(), "python": platform.python_version(),
                    "cpus": os.cpu_count(),
                    "podman": commands.run("podman", "--version").stdout.split()[-1]},
        "hook": str(lab.hook_binary()),
        "podman_run": podman_rows,
        # Debian 13 in the lab: bridge + macvlan, "RUNTIME, plain|MODE".
        "podman5_lab": {"versions": {**p5_versions, "deb": deb.name}, "podman_run": p5_rows},
        "hook_alone": hook_rows,
        "targets": {m: {"ratio_max": r, "met": podman_rows[m]["ratio"] <= r}
                    for m, r in TARGETS.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print(table(f"podman run --rm, {args.runs} interleaved runs each (two networks unless "
                f"named; host-wide: containers.conf {HOST_WIDE}):",
                podman_rows, "ratio", "added_ms"))
    print(side_by_side(f"\npodman 5 lab (podman {p5_versions['podman']}, netavark "
                       f"{p5_versions['netavark']}, the deb's hook), bridge + macvlan, "
                       f"{args.p5_runs} interleaved runs each:", p5_rows, podman_rows))
    print(table("\nthe hook alone (OCI state on stdin):", hook_rows, "peak_rss_kib"))
    print("\ntargets: " + ", ".join(
        f"{m} <= {r}: {'met' if podman_rows[m]['ratio'] <= r else 'MISSED'}"
        for m, r in TARGETS.items()))
    print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
