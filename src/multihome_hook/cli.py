"""The operator's commands: diagnose, apply, watch.

`oci-multihome-hook` with arguments lands here; without, it is the OCI hook
(hook.py), whose start-up never pays for argparse or pydantic.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING

from . import containers, diagnosis, log, netns, snapshot
from .errors import HookError
from .fix import fix
from .kernel import AF_INET6, ALL, Snapshot, natural_key
from .models import (
    ContainerReport,
    DiagnoseReport,
    InterfaceReport,
    PodmanEvent,
    RouteReport,
    to_json,
)
from .modes import FIXES, OFF, parse_mode
from .netlink import RouteSocket
from .primary import parse_primary

if TYPE_CHECKING:
    from .primary import Primary

HEALTHY, PROBLEM, ERROR = 0, 1, 2


def _primary(target: containers.Target, given: str | None) -> Primary | None:
    value = given if given is not None else target.primary
    return None if value is None else parse_primary(value)


def _read() -> Snapshot:
    """Everything diagnose needs (what every mode reads), inside the
    container's namespace."""
    with RouteSocket() as sock:
        return Snapshot(snapshot.read_rp_filter(), snapshot.read_routing(sock, rules=True))


def _fixes(target: containers.Target, state: Snapshot) -> dict[str, list[str]]:
    """What each mode would change now."""
    fixes: dict[str, list[str]] = {}
    try:
        primary = _primary(target, None)
    except HookError as exc:
        primary, fixes["error"] = None, [str(exc)]
    for mode in FIXES:
        try:
            fixes[mode.name] = [str(c) for c in mode.planner(state, primary, True, False)]
        except HookError as exc:
            fixes[mode.name] = [f"cannot: {exc}"]
    return fixes


def _report(target: containers.Target) -> ContainerReport:
    state = netns.run_in(target.pid, _read)
    routing, rp_filter = state.routing, state.rp_filter
    fixes = _fixes(target, state)
    problems, notes = diagnosis.verdict(routing, rp_filter)
    interfaces = [
        InterfaceReport(name=name, rp_filter=rp_filter.get(name, 0),
                        effective_rp_filter=diagnosis.effective_rp_filter(rp_filter, name),
                        addresses=[f"{a.address}/{a.prefixlen}" for a in routing.addresses
                                   if a.ifindex == index])
        for index, name in sorted(routing.links.items(), key=lambda item: natural_key(item[1]))
        if name != "lo"]
    routes = [RouteReport(family="ipv6" if r.family == AF_INET6 else "ipv4", dev=nh.dev,
                          gateway=nh.gateway, metric=r.metric)
              for r in routing.defaults() for nh in r.nexthops]
    return ContainerReport(container=target.ref, id=target.id, pid=target.pid,
                           mode_annotation=target.mode, interfaces=interfaces,
                           rp_filter_all=rp_filter.get(ALL, 0), default_routes=routes,
                           healthy=not problems, problems=problems, notes=notes, fixes=fixes)


def _print_report(report: ContainerReport) -> None:
    target = report.container + (f" ({report.id[:12]})" if report.id else "")
    state = "healthy" if report.healthy else "PROBLEM"
    print(f"{target}, pid {report.pid}: {state}")
    for iface in report.interfaces:
        print(f"  {iface.name:<10} rp_filter {iface.effective_rp_filter}  "
              f"{' '.join(iface.addresses) or '-'}")
    for route in report.default_routes:
        via = f"via {route.gateway} " if route.gateway else ""
        print(f"  {route.family} default {via}dev {route.dev} metric {route.metric}")
    for problem in report.problems:
        print(f"  problem: {problem}")
    for note in report.notes:
        print(f"  note: {note}")
    if report.problems:
        for mode, changes in report.fixes.items():
            _print_changes(f"  fix with --mode {mode}", changes)


def _print_changes(title: str, changes: Sequence[object]) -> None:
    print(f"{title}: {len(changes)} change(s)" if changes else f"{title}: nothing to change")
    for change in changes:
        print(f"      {change}")


def _diagnose(args: argparse.Namespace) -> int:
    refs = [*args.containers, *(containers.running() if args.all else [])]
    if not refs:
        raise HookError("nothing to diagnose: name containers (or pid:N), or use --all")
    reports = [_report(containers.resolve(ref)) for ref in refs]
    if args.json:
        print(to_json(DiagnoseReport(containers=reports)))
    else:
        for report in reports:
            _print_report(report)
    return HEALTHY if all(r.healthy for r in reports) else PROBLEM


def _apply(args: argparse.Namespace) -> int:
    mode = parse_mode(args.mode)
    for ref in args.containers:
        target = containers.resolve(ref)
        primary = _primary(target, args.primary)
        outcome = netns.run_in(target.pid, partial(fix, mode, primary, dry_run=args.dry_run,
                                                   strict=target.strict(mode),
                                                   switch=True))
        title = f"{target}: mode {mode}{', dry run' if args.dry_run else ''}"
        if outcome.skipped:
            print(f"{title}: {outcome.skipped}")
        else:
            _print_changes(title, outcome.changes)
    return HEALTHY


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(HEALTHY)


def _addresses() -> list[str]:
    with RouteSocket() as sock:
        return [a.address for a in sock.addresses()]


def _wait_for(pid: int, network: str, timeout: float = 5.0) -> None:
    """Until the container has an address in `network`: podman reports a
    connect before the interface exists."""
    import ipaddress

    nets = [ipaddress.ip_network(s, strict=False) for s in containers.subnets(network)]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = netns.run_in(pid, _addresses)
        if any(ipaddress.ip_address(a) in n for a in found for n in nets
               if ipaddress.ip_address(a).version == n.version):
            return
        time.sleep(0.1)


def _on_event(event: PodmanEvent) -> str | None:
    """Converge a container the event concerns; the line to log, if any."""
    target = containers.resolve(event.id)
    mode = None if target.mode is None else parse_mode(target.mode)
    if mode is None or mode is OFF:
        return None
    if event.status == "connect":
        _wait_for(target.pid, event.network)
    outcome = netns.run_in(target.pid, partial(fix, mode, _primary(target, None),
                                               strict=target.strict(mode)))
    if event.status == "start" and not outcome.changes:
        return None  # the hook did it already (unless a user namespace kept it from it)
    what = "started" if event.status == "start" else f"network {event.network} {event.status}ed"
    return f"container {event.id[:12]}: {what}, mode {mode}: {outcome}"


def _watch(args: argparse.Namespace) -> int:
    # SIGTERM (systemctl stop) unwinds like ^C, so `podman events` is stopped too.
    signal.signal(signal.SIGTERM, _stop)
    log.info("watching podman events: applying io.multihome.mode again on network connect "
             "and disconnect, and on start")
    try:
        for event in containers.events():
            try:
                line = _on_event(event)
            except HookError as exc:  # one container's trouble must not stop the watch
                log.error(f"container {event.id[:12]}: {exc}")
                continue
            if line:
                print(line, flush=True)
                log.info(line)
    except KeyboardInterrupt:
        return HEALTHY
    return HEALTHY


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oci-multihome-hook",
        description="Diagnose and fix multi-homed containers whose replies vanish under "
                    "strict rp_filter. Without arguments: the OCI hook (state on stdin).")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    diagnose = commands.add_parser("diagnose", help="explain what drops packets, and the fix")
    diagnose.add_argument("containers", nargs="*", metavar="CONTAINER",
                          help="podman name or id, or pid:N")
    diagnose.add_argument("--all", action="store_true", help="every running podman container")
    diagnose.add_argument("--json", action="store_true", help="machine-readable (schema 1)")
    diagnose.set_defaults(run=_diagnose)
    apply = commands.add_parser("apply", help="apply a mode to running containers")
    apply.add_argument("containers", nargs="+", metavar="CONTAINER",
                       help="podman name or id, or pid:N")
    apply.add_argument("--mode", required=True, choices=[m.name for m in FIXES])
    apply.add_argument("--primary", help="interface, subnet or gateway (default: the "
                       "container's io.multihome.primary, else the automatic rule)")
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.set_defaults(run=_apply)
    watch = commands.add_parser("watch", help="apply io.multihome.mode again when podman "
                                "connects or disconnects a network, and when a container starts")
    watch.set_defaults(run=_watch)
    return parser


def _join_rootless_podman(argv: Sequence[str]) -> None:
    """Rootless podman keeps its containers' namespaces inside the user's user
    namespace, where only `podman unshare` gives the right to enter them: run
    again in there (podman marks it with _CONTAINERS_USERNS_CONFIGURED)."""
    if os.geteuid() == 0 or os.environ.get("_CONTAINERS_USERNS_CONFIGURED"):
        return
    try:
        os.execvp("podman", ["podman", "unshare", sys.executable, sys.argv[0], *argv])
    except OSError as exc:
        raise HookError("cannot run podman unshare (needed without root): "
                        f"{exc.strerror}") from None


def main(argv: Sequence[str]) -> int:
    args = _parser().parse_args(argv)
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        _join_rootless_podman(argv)
        return run(args)
    except HookError as exc:
        log.error(str(exc))
        return ERROR
