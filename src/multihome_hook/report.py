"""`diagnose`: what one container's network looks like, why it drops
packets, and for each mode the command that fixes it now and the annotation
that keeps it fixed."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from . import containers, diagnosis, netns, snapshot
from .errors import HookError, HostNamespace
from .kernel import AF_INET, AF_INET6, ALL, RT_SCOPE_LINK, Route, Routing, Snapshot, natural_key
from .models import ContainerReport, InterfaceReport, RouteReport
from .modes import FIXES, LOOSE, MODE_KEY, ONE_DEFAULT, RECOMMENDED, WHY_RECOMMENDED, Mode
from .netlink import RouteSocket
from .networks import definitions, directories, resolve
from .plan import Delete, preferred
from .primary import PRIMARY_KEY, attached, parse_primary, primary_ifindex

if TYPE_CHECKING:
    from .plan import Change
    from .primary import Primary

NOT_DIAGNOSED = "shares the host's network namespace (--network host): not diagnosed"


def _read() -> Snapshot:
    """Everything diagnose needs (what every mode reads), inside the
    container's namespace."""
    with RouteSocket() as sock:
        return Snapshot(snapshot.read_rp_filter(), snapshot.read_routing(sock, rules=True))


def primary_of(target: containers.Target, given: str | None,
               interfaces: list[str]) -> Primary | None:
    """The primary `given` (else the container's annotation), network names
    resolved against the container's own networks."""
    value = given if given is not None else target.primary
    if value is None:
        return None
    return resolve(parse_primary(value), interfaces, target.networks)


def _networks(target: containers.Target, routing: Routing) -> dict[int, str]:
    known = target.networks if target.networks is not None else definitions(directories())
    return attached(routing, known)


class _Fixes:
    """What each mode would change now, and what to type for it."""

    def __init__(self, target: containers.Target, state: Snapshot,
                 networks: Mapping[int, str]) -> None:
        self.target, self.state, self.networks = target, state, networks
        self.changes: dict[str, list[str]] = {}
        self.error: str | None = None
        self.primary: Primary | None = None
        try:
            self.primary = primary_of(target, None, list(state.routing.links.values()))
        except HookError as exc:
            self.error = str(exc)
        self.plans: dict[str, list[Change]] = {}
        for mode in FIXES:
            try:
                self.plans[mode.name] = mode.planner(state, self.primary, True, False)
                self.changes[mode.name] = [str(c) for c in self.plans[mode.name]]
            except HookError as exc:
                self.changes[mode.name] = [f"cannot: {exc}"]

    def annotations(self, mode: Mode) -> list[str]:
        """The annotations that give the container `mode` from its next start."""
        return permanent(mode, self.target.primary,
                         pinned(self.state.routing, self.primary, self.networks))

    def trade(self) -> list[str]:
        """The interfaces one-default takes the default route from."""
        routing = self.state.routing
        lost = {nh.ifindex for c in self.plans.get(ONE_DEFAULT.name, [])
                if isinstance(c, Delete) and isinstance(c.item, Route) and c.item.is_default
                and c.item.family == AF_INET for nh in c.item.nexthops}
        return [diagnosis.label(routing, i, self.networks)
                for i in sorted(lost, key=lambda i: natural_key(routing.links.get(i, "")))]


def pinned(routing: Routing, primary: Primary | None, networks: Mapping[int, str]) -> str | None:
    """An io.multihome.primary for the interface whose default route main
    keeps (one-default, source-routing): its network's name, else its
    subnet; never the interface's name, whose order podman does not keep."""
    for family in (AF_INET, AF_INET6):
        hops = [(r, nh) for r in routing.defaults() if r.family == family for nh in r.nexthops]
        if not hops:
            continue
        try:
            uplinks = {nh.ifindex for r, nh in hops}
            index = None if primary is None else primary_ifindex(routing, primary, uplinks)
        except HookError:
            return None
        kept = preferred(hops, index)[1].ifindex
        if kept in networks:
            return networks[kept]
        return next((str(ipaddress.ip_interface(f"{a.address}/{a.prefixlen}").network)
                     for a in routing.addresses
                     if a.ifindex == kept and a.family == family and a.scope != RT_SCOPE_LINK),
                    None)
    return None


def pin_here(target: containers.Target, primary: Primary | None) -> str | None:
    """pinned(), read from the namespace this thread is in."""
    with RouteSocket() as sock:
        routing = snapshot.read_routing(sock)
    return pinned(routing, primary, _networks(target, routing))


def permanent(mode: Mode, annotated: str | None, pin: str | None) -> list[str]:
    """The annotations that give a container `mode` from its next start:
    its primary as annotated, else as pinned (loose has none)."""
    primary = None if mode is LOOSE else annotated or pin
    return [f"{MODE_KEY}={mode}", *([f"{PRIMARY_KEY}={primary}"] if primary else [])]


def how_to_keep(annotations: list[str]) -> list[str]:
    """The lines that make a mode permanent: podman run and Quadlet."""
    return [f"permanent: podman run {' '.join(f'--annotation {a}' for a in annotations)} ...",
            f"Quadlet:   [Container] Annotation={' '.join(annotations)}"]


def diagnose(ref: str) -> tuple[ContainerReport, list[str]]:
    """One container's report, or its error in place; and the lines that
    tell how to fix it (empty when healthy)."""
    target = None
    try:
        target = containers.resolve(ref)
        return _diagnosed(target)
    except HookError as exc:
        host = isinstance(exc, HostNamespace)
        return ContainerReport(container=ref, id=None if target is None else target.id,
                               pid=None if target is None else target.pid,
                               status="host-network" if host else "error",
                               error=None if host else str(exc)), []


def _diagnosed(target: containers.Target) -> tuple[ContainerReport, list[str]]:
    state = netns.run_in(target.pid, _read)
    routing, rp_filter = state.routing, state.rp_filter
    networks = _networks(target, routing)
    fixes = _Fixes(target, state, networks)
    problems, notes = diagnosis.verdict(routing, rp_filter, networks)
    interfaces = [
        InterfaceReport(name=name, network=networks.get(index), rp_filter=rp_filter.get(name, 0),
                        effective_rp_filter=diagnosis.effective_rp_filter(rp_filter, name),
                        addresses=[f"{a.address}/{a.prefixlen}" for a in routing.addresses
                                   if a.ifindex == index])
        for index, name in sorted(routing.links.items(), key=lambda item: natural_key(item[1]))
        if name != "lo"]
    routes = [RouteReport(family="ipv6" if r.family == AF_INET6 else "ipv4", dev=nh.dev,
                          gateway=nh.gateway, metric=r.metric)
              for r in routing.defaults() for nh in r.nexthops]
    changes = dict(fixes.changes)
    if fixes.error:
        changes["error"] = [fixes.error]
    report = ContainerReport(
        container=target.ref, id=target.id, pid=target.pid,
        status="problem" if problems else "healthy", mode_annotation=target.mode,
        interfaces=interfaces, rp_filter_all=rp_filter.get(ALL, 0), default_routes=routes,
        healthy=not problems, problems=problems, notes=notes, fixes=changes)
    return report, list(_how_to_fix(target, fixes)) if problems else []


def _how_to_fix(target: containers.Target, fixes: _Fixes) -> Iterator[str]:
    if fixes.error:
        yield f"  {PRIMARY_KEY}: {fixes.error}"
    # The recommended mode first: its command is the one to copy.
    for mode in sorted(FIXES, key=lambda m: m is not RECOMMENDED):
        changes = fixes.changes[mode.name]
        title = f"--mode {mode} (recommended: {WHY_RECOMMENDED})" if mode is RECOMMENDED \
            else f"--mode {mode}"
        yield (f"  fix with {title}: {len(changes)} change(s)" if changes
               else f"  fix with {title}: nothing to change")
        yield from (f"      {change}" for change in changes)
        if mode is ONE_DEFAULT and fixes.trade():
            yield f"    trade: afterwards {', '.join(fixes.trade())} {diagnosis.ONE_DEFAULT_TRADE}"
        yield f"    now:       oci-multihome-hook apply --mode {mode} {target.ref}"
        yield from (f"    {line}" for line in how_to_keep(fixes.annotations(mode)))


def lines(report: ContainerReport, how_to_fix: list[str]) -> Iterator[str]:
    """The report as text."""
    target = report.container + (f" ({report.id[:12]})" if report.id else "")
    if report.status == "host-network":
        yield f"{target}: {NOT_DIAGNOSED}"
        return
    if report.status == "error":
        yield f"{target}: ERROR: {report.error}"
        return
    yield f"{target}, pid {report.pid}: {'healthy' if report.healthy else 'PROBLEM'}"
    for iface in report.interfaces:
        name = f"{iface.name} ({iface.network})" if iface.network else iface.name
        yield (f"  {name:<20} rp_filter {iface.effective_rp_filter}  "
               f"{' '.join(iface.addresses) or '-'}")
    for route in report.default_routes:
        via = f"via {route.gateway} " if route.gateway else ""
        yield f"  {route.family} default {via}dev {route.dev} metric {route.metric}"
    yield from (f"  problem: {problem}" for problem in report.problems)
    yield from (f"  note: {note}" for note in report.notes)
    yield from how_to_fix
