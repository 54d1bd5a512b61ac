"""`diagnose`: what one container's network looks like, why it drops
packets, and for each mode the command that fixes it now and the annotation
that keeps it fixed."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from . import containers, diagnosis, host, links, netns, snapshot
from .errors import HookError, HostNamespace
from .fix import APPLY
from .keep import how_to_keep, permanent, pinned
from .kernel import AF_INET, AF_INET6, ALL, Route, Snapshot, natural_key
from .models import ContainerReport, FindingReport, InterfaceReport, RouteReport
from .modes import FIXES, OWN_SUBNET_ONLY, Mode
from .networks import resolve_primary
from .plan import Delete
from .primary import PRIMARY_KEY

if TYPE_CHECKING:
    from .plan import Change
    from .primary import Primary

_TITLE = {"healthy": "healthy", "risk": "RISK", "problem": "PROBLEM"}
NOT_DIAGNOSED = "shares the host's network namespace (--network host): not diagnosed"


def _read() -> tuple[Snapshot, dict[int, links.Link]]:
    """Everything diagnose needs (what every mode reads, and the kinds of
    the interfaces), inside the container's namespace."""
    return Snapshot(snapshot.read_rp_filter(), snapshot.current(rules=True)), links.dump()


class _Fixes:
    """What each mode would change now (as `apply` would), and what to type for it."""

    def __init__(self, target: containers.Target, state: Snapshot,
                 networks: Mapping[int, str]) -> None:
        self.target, self.state, self.networks = target, state, networks
        self.changes: dict[str, list[str]] = {}
        self.error: str | None = None
        self.primary: Primary | None = None
        try:
            given = target.primary_given(None)
            if given is not None:
                self.primary = resolve_primary(given, list(state.routing.links.values()),
                                               target.networks)
        except HookError as exc:
            self.error = str(exc)
        self.plans: dict[str, list[Change]] = {}
        for mode in FIXES:
            try:
                self.plans[mode.name] = mode.plan(state, APPLY, primary=self.primary)
                self.changes[mode.name] = [str(c) for c in self.plans[mode.name]]
            except HookError as exc:
                self.changes[mode.name] = [f"cannot: {exc}"]

    def annotations(self, mode: Mode) -> list[str]:
        """The annotations that give the container `mode` from its next start."""
        return permanent(mode, self.target.primary,
                         pinned(self.state.routing, self.primary, self.networks))

    def dropped(self, mode: Mode) -> list[str]:
        """The interfaces whose IPv4 default route `mode` deletes from main."""
        routing = self.state.routing
        lost = {nh.ifindex for c in self.plans.get(mode.name, [])
                if isinstance(c, Delete) and isinstance(c.item, Route) and c.item.is_default
                and c.item.family == AF_INET for nh in c.item.nexthops}
        return [diagnosis.label(routing, i, self.networks)
                for i in sorted(lost, key=lambda i: natural_key(routing.links.get(i, "")))]


def diagnose(ref: str) -> tuple[ContainerReport, list[str]]:
    """One container's report, or its error in place; and the lines that
    tell how to fix it (empty when healthy)."""
    target = None
    try:
        target = containers.find(ref)
        return _diagnosed(target)
    except HookError as exc:
        host = isinstance(exc, HostNamespace)
        return ContainerReport(container=ref, id=None if target is None else target.id,
                               pid=None if target is None else target.pid,
                               status="host-network" if host else "error",
                               error=None if host else str(exc)), []


# What lies beyond a container's interface, by its kind in the kernel.
_BEYOND_KIND = {"veth": "bridge", "macvlan": "macvlan", "macvtap": "macvlan",
                "ipvlan": "ipvlan"}


def _around(target: containers.Target, state: Snapshot, inside: Mapping[int, links.Link],
            networks: Mapping[int, str]) -> diagnosis.Around:
    """What lies beyond the container's interfaces: from the kernel (each
    interface's kind; for a veth, the host's filter on the bridge its peer
    is enslaved to) and netavark's rules (where published ports lead)."""
    # A veth leads out only when its peer is in another namespace.
    kinds = {i: _BEYOND_KIND[link.kind] for i, link in inside.items()
             if link.kind in _BEYOND_KIND and (link.kind != "veth" or link.peer is not None)}
    # What the host says matters only where a reply may leave by another
    # interface than its address's: no host I/O for one network.
    if not diagnosis.multi_homed(state.routing):
        return diagnosis.Around(networks, kinds, ports=target.ports)
    filters: dict[int, int] = {}
    outside = links.dump()
    for index, link in inside.items():
        peer = outside.get(link.peer) if link.kind == "veth" and link.peer else None
        bridge = outside.get(peer.master) if peer and peer.master and \
            peer.kind == "veth" and peer.peer == index else None
        found = host.bridge_filter(bridge.name) if bridge else None
        if found is not None:
            filters[index] = found
    targets = host.port_targets(target.ports) if target.ports else []
    return diagnosis.Around(networks, kinds, filters, target.ports, targets)


def _diagnosed(target: containers.Target) -> tuple[ContainerReport, list[str]]:
    state, inside = netns.run_in(target.pid, _read)
    routing, rp_filter = state.routing, state.rp_filter
    networks = target.attached(routing)
    fixes = _Fixes(target, state, networks)
    findings = diagnosis.verdict(routing, rp_filter, _around(target, state, inside, networks))
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

    def texts(severity: str) -> list[str]:
        return [f.text for f in findings if f.severity == severity]

    status = diagnosis.status(findings)
    report = ContainerReport(
        container=target.ref, id=target.id, pid=target.pid, status=status,
        mode_annotation=target.mode, interfaces=interfaces, rp_filter_all=rp_filter.get(ALL, 0),
        default_routes=routes, healthy=status != diagnosis.PROBLEM,
        findings=[FindingReport(severity=f.severity, kind=f.kind or None, text=f.text)
                  for f in findings],
        problems=texts(diagnosis.PROBLEM), risks=texts(diagnosis.RISK),
        limits=texts(diagnosis.LIMIT), notes=texts(diagnosis.NOTE), fixes=changes)
    lost = any(f.kind == diagnosis.NO_DEFAULT for f in findings)
    return report, (list(_how_to_fix(target, fixes, lost))
                    if status != "healthy" else [])


def _how_to_fix(target: containers.Target, fixes: _Fixes, lost: bool) -> Iterator[str]:
    if fixes.error:
        yield f"  {PRIMARY_KEY}: {fixes.error}"
    if lost:
        again = target.mode or next(m.name for m in FIXES if m.recommended)
        yield (f"  the primary is gone: oci-multihome-hook apply --mode {again} {target.ref} "
               "brings a default route back now; the watch service "
               "(oci-multihome-hook-watch.service) does it at every connect and disconnect")
    # The recommended mode first: its command is the one to copy.
    for mode in sorted(FIXES, key=lambda m: not m.recommended):
        changes = fixes.changes[mode.name]
        title = f"--mode {mode}" + (f" (recommended: {mode.recommended})"
                                    if mode.recommended else "")
        yield (f"  fix with {title}: {len(changes)} change(s)" if changes
               else f"  fix with {title}: nothing to change")
        yield from (f"      {change}" for change in changes)
        dropped = fixes.dropped(mode) if mode.drops_others else []
        if dropped:
            yield f"    trade: afterwards {', '.join(dropped)} {OWN_SUBNET_ONLY}"
        else:
            yield f"    trade: {mode.trade}"
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
    yield f"{target}, pid {report.pid}: {_TITLE[report.status]}"
    for iface in report.interfaces:
        name = f"{iface.name} ({iface.network})" if iface.network else iface.name
        yield (f"  {name:<20} rp_filter {iface.effective_rp_filter}  "
               f"{' '.join(iface.addresses) or '-'}")
    for route in report.default_routes:
        via = f"via {route.gateway} " if route.gateway else ""
        yield f"  {route.family} default {via}dev {route.dev} metric {route.metric}"
    for finding in report.findings:
        kind = f" ({finding.kind})" if finding.kind else ""
        yield f"  {finding.severity}{kind}: {finding.text}"
    yield from how_to_fix
