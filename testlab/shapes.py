"""Network shapes: the same containers, modes and measurements on every
stack of the root labs (testlab/rootlab.py).

A shape is two networks with pinned interface names: eth0 is a bridge
(but in "two macvlans"), eth1 the network the shape is about. Each
container is measured the same way (`measure`): pings to the far host
unbound, bound to each device and to each address, and from the far host
inbound to each address, ping and TCP; IPv6 too for dual stack; with a
published port, TCP connections from the far host through the port forward.
Which default route comes first is the stack's: equal metrics (podman 4 and
5) in no fixed order, or netavark 2.0's metric 99 for macvlan and ipvlan
(`metric`, a function of the network's kind). `check_state` and `check_result` assert what a mode
must give; `Results` keeps every measured row for the tables printed at the
end of a pytest run, and writes them as JSON.

    python -m testlab.shapes RESULTS.json...   # the tables in markdown (README)
    python -m testlab.shapes --agreement RESULTS.json...   # diagnose against them
"""

from __future__ import annotations

import gzip
import json
import math
import platform
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from multihome_hook.host import port_target

from . import settings
from .rootlab import Container, ping_loss

if TYPE_CHECKING:  # the tables are printed by pytest; the demo has no pytest
    import pytest

    from .roots import Stack

MODE, RP_FILTER = "io.multihome.mode", "io.multihome.rp_filter"
MODES: dict[str, dict[str, str]] = {
    "no annotation": {},
    "loose": {MODE: "loose"},
    "one-default": {MODE: "one-default"},
    "source-routing": {MODE: "source-routing"},
    "source-routing + rp_filter=strict": {MODE: "source-routing", RP_FILTER: "strict"},
}
# The host's filtering a container starts with (the lab's rp_filter hook,
# testlab/lab_rp_filter.py, by its lab-only annotation): RHEL's strict, the
# loose of Fedora and Ubuntu, Debian's off.
FILTERING_KEY = "mhlab.filtering"
FILTERINGS = {"strict": 1, "loose": 2, "off": 0}
UNBOUND_PINGS, BOUND_PINGS, INBOUND_PINGS = 40, 20, 20
# Fast pings are fine: aged gateway neighbours make the kernel alternate
# between default routes at every packet, whatever the interval (measured:
# 45-50 % at -i 0.25, 0.05, 0.02 and 0.01).
INTERVAL, WAIT = 0.02, 0.3
TCP_PORT, TCP_ATTEMPTS, TCP_TIMEOUT = 7000, 8, 0.3
DEVICES = ("eth0", "eth1")
# A port published with `podman run -p`: netavark publishes it on every
# network (port_device), so the case names no device.
PORT_CASE = "TCP port"
# netavark's (and CNI's) metric for every network before netavark 2.0.
Metric = Callable[[str], int]


def same_metric(kind: str) -> int:
    return 100
# A reply that waits for a retransmission is a lost one here: one try each.
_TCP_CLIENT = """\
import socket, sys
source, address, port, attempts, timeout = sys.argv[1:]
ok = 0
for _ in range(int(attempts)):
    try:
        with socket.create_connection((address, int(port)), float(timeout), (source, 0)) as s:
            ok += s.recv(8).startswith(b"ok")
    except OSError:
        pass
print(ok)
"""


@dataclass(frozen=True)
class Shape:
    name: str
    kinds: tuple[str, str]  # of eth0, eth1: bridge, macvlan, ipvlan, internal
    ipv6: bool = False
    port: bool = False  # a port published (podman run -p): see port_device

    @property
    def uplinks(self) -> tuple[str, ...]:
        """The devices with a default route (an internal network has none)."""
        return tuple(dev for dev, kind in zip(DEVICES, self.kinds) if kind != "internal")

    def cases(self) -> list[str]:
        """The measured cases, in the order of the tables' columns."""
        found = []
        for suffix in ("", " v6") if self.ipv6 else ("",):
            found.append(f"unbound{suffix}")
            found += [f"-I {dev}{suffix}" for dev in DEVICES]
            found += [f"-I {dev} addr{suffix}" for dev in DEVICES]
            found += [f"ping in {dev}{suffix}" for dev in DEVICES]
            found += [f"TCP in {dev}{suffix}" for dev in DEVICES]
        return [*found, PORT_CASE] if self.port else found

    def first(self, metric: Metric) -> str | None:
        """The uplink whose default route comes first whatever the order
        podman adds them in (a lower metric), or None."""
        metrics = {dev: metric(kind) for dev, kind in zip(DEVICES, self.kinds)
                   if dev in self.uplinks}
        lowest = min(metrics.values())
        firsts = [dev for dev, value in metrics.items() if value == lowest]
        return firsts[0] if len(firsts) == 1 and len(metrics) > 1 else None

    def kept(self, metric: Metric) -> str:
        """The uplink whose default the route modes keep in main when no
        primary is given: the lowest metric, ties to the name sorting first."""
        return self.first(metric) or self.uplinks[0]


def kernel_has_ipvlan() -> bool:
    """Built in, loaded, or a module to load (this machine's kernel has
    none: CONFIG_IPVLAN is not set, and podman's netavark gets EOPNOTSUPP)."""
    if Path("/sys/module/ipvlan").exists():
        return True
    modules = Path("/lib/modules") / platform.release() / "kernel/drivers/net/ipvlan"
    if any(modules.glob("ipvlan.ko*")):
        return True
    try:
        with gzip.open("/proc/config.gz", "rt") as config:
            return any(line.startswith(("CONFIG_IPVLAN=y", "CONFIG_IPVLAN=m"))
                       for line in config)
    except OSError:
        return False


TWO_BRIDGES = Shape("two bridges", ("bridge", "bridge"))
BRIDGE_MACVLAN = Shape("bridge + macvlan", ("bridge", "macvlan"))
BRIDGE_IPVLAN = Shape("bridge + ipvlan (L2)", ("bridge", "ipvlan"))
INTERNAL_BRIDGE = Shape("internal + bridge", ("bridge", "internal"))
DUAL_STACK = Shape("dual stack (two bridges)", ("bridge", "bridge"), ipv6=True)
# A port published on two bridges leads to one of them, chosen anew for each
# container (port_device); its replies leave by whichever default comes
# first, where the host's strict filter drops those from the other's address.
PORT_TWO_BRIDGES = Shape("published port on two bridges", ("bridge", "bridge"), port=True)
PUBLISHED_PORT = Shape("published port + macvlan", ("bridge", "macvlan"), port=True)
TWO_MACVLANS = Shape("two macvlans", ("macvlan", "macvlan"))
ALL_SHAPES = (TWO_BRIDGES, BRIDGE_MACVLAN, BRIDGE_IPVLAN, INTERNAL_BRIDGE, DUAL_STACK,
              PORT_TWO_BRIDGES, PUBLISHED_PORT, TWO_MACVLANS)
# The shapes this machine can make.
SHAPES = tuple(shape for shape in ALL_SHAPES
               if shape is not BRIDGE_IPVLAN or kernel_has_ipvlan())


def pinned(networks: Sequence[str]) -> list[str]:
    """`--network` values naming the interfaces: eth0, eth1 in this order
    (podman's own order does not follow the command line's)."""
    return [f"{net}:interface_name={dev}" for net, dev in zip(networks, DEVICES)]


C = TypeVar("C", bound=Container)


@contextmanager
def failing_order(start: Callable[[], AbstractContextManager[C]],
                  attempts: int = 16) -> Iterator[C]:
    """A container (from `start`) whose two IPv4 default routes are in an
    order that loses packets: the second one's device filters strictly, so
    a reply that arrives there while the first is the best route back is
    dropped. Podman gives both defaults the same metric, in an order it
    does not fix (measured: netavark either, about half the time each; CNI
    the first network's mostly second); with both devices strict (podman
    4) either order fails, but podman 5 loosens bridges: there only a
    bridge's default first, before a macvlan's, does. The failing condition
    is made, not hoped for: new containers until the order is a failing one."""
    seen: set[str] = set()
    for _ in range(attempts):
        with start() as c:
            routes = c.default_routes()
            second = [(r["dev"], c.sysctl(f"ipv4/conf/{r['dev']}/rp_filter")) for r in routes[1:]]
            if len(routes) == 2 and second[0][1] == 1:
                yield c
                return
            seen.add(", ".join(f"{dev} second with rp_filter {value}" for dev, value in second))
    raise RuntimeError(f"no container's default routes came in a failing order in "
                       f"{attempts} attempts; seen: {'; '.join(sorted(seen))}")



def container(make: Callable[[], AbstractContextManager[C]], shape: Shape, mode: str,
              buggy: bool, metric: Metric = same_metric) -> AbstractContextManager[C]:
    """A container of `shape` in `mode` (from `make`), without the hook in
    the failing order of its default routes (failing_order) when podman
    leaves that order to chance."""
    if buggy and len(shape.uplinks) == 2 and mode == "no annotation" \
            and shape.first(metric) is None:
        return failing_order(make)
    return make()


def address(c: Container, dev: str, family: int) -> str:
    (found,) = [a for a in c.interfaces()[dev] if (":" in a) == (family == 6)]
    return found


def _listening(c: Container, port: int) -> bool:
    tables = c.ns("cat", "/proc/net/tcp", "/proc/net/tcp6").stdout
    # local_address is ADDR:PORT in hex, state 0A is LISTEN
    return any(f":{port:04X} " in line and line.split()[3] == "0A"
               for line in tables.splitlines()[1:] if len(line.split()) > 3)


def listen(c: Container, timeout: float = 5) -> None:
    """A TCP server in the container answering "ok" on every address (busybox
    nc listens on IPv6's any, which takes IPv4 too)."""
    c.start("nc", "-ll", "-p", str(TCP_PORT), "-e", "echo", "ok")
    deadline = time.monotonic() + timeout
    while not _listening(c, TCP_PORT):
        if time.monotonic() > deadline:
            raise TimeoutError(f"nothing listens on port {TCP_PORT} in the container")
        time.sleep(0.05)


def _source(c: Container, target: str) -> str:
    """The far host's own address: its namespace would otherwise answer a
    macvlan or ipvlan address from the gateway it holds, on-link."""
    return c.far_host6 if ":" in target else c.far_host


def inbound_ping(c: Container, target: str) -> float:
    """% of pings from the far host to one of the container's addresses lost."""
    proc = c.far("ping", "-n", "-q", "-c", str(INBOUND_PINGS), "-i", str(INTERVAL),
                 "-W", str(WAIT), "-I", _source(c, target), target, check=False)
    return ping_loss(proc, target)


def inbound_tcp(c: Container, target: str, port: int = TCP_PORT) -> float:
    """% of TCP connections from the far host to `target` that failed."""
    out = c.far("python3", "-c", _TCP_CLIENT, _source(c, target), target, str(port),
                str(TCP_ATTEMPTS), str(TCP_TIMEOUT)).stdout
    return 100.0 * (TCP_ATTEMPTS - int(out)) / TCP_ATTEMPTS


def _loss(c: Container, target: str, count: int, bind: str | None) -> float:
    return c.loss(target, count, bind, INTERVAL, WAIT, math.ceil(count * INTERVAL + WAIT) + 1)


def measure(c: Container, shape: Shape,
            published: tuple[str, int] | None = None) -> dict[str, float]:
    """Every case of `shape.cases()`: % of pings lost, % of TCP connections
    failed. `published`: where the far host reaches the container's port
    (the lab's address and the published port), for a shape with one."""
    if shape.ipv6:
        c.settle()
    listen(c)
    result: dict[str, float] = {}
    for family in (4, 6) if shape.ipv6 else (4,):
        suffix, far = ("", c.far_host) if family == 4 else (" v6", c.far_host6)
        result[f"unbound{suffix}"] = _loss(c, far, UNBOUND_PINGS, None)
        for dev in DEVICES:
            result[f"-I {dev}{suffix}"] = _loss(c, far, BOUND_PINGS, dev)
        addresses = {dev: address(c, dev, family) for dev in DEVICES}
        for dev in DEVICES:
            result[f"-I {dev} addr{suffix}"] = _loss(c, far, BOUND_PINGS, addresses[dev])
        for dev in DEVICES:
            result[f"ping in {dev}{suffix}"] = inbound_ping(c, addresses[dev])
        for dev in DEVICES:
            result[f"TCP in {dev}{suffix}"] = inbound_tcp(c, addresses[dev])
    if shape.port:
        assert published is not None, f"{shape.name}: where is the port published?"
        result[PORT_CASE] = inbound_tcp(c, *published)
    return result


def filterings(shape: Shape, mode: str, loosened: bool) -> tuple[str, ...]:
    """The host filterings a cell is measured with: strict always; loose and
    off too where they leave the container other effective filters than
    strict does: under the modes that keep the filters a container starts
    with (`loose` sets 2 wherever it finds 1, and 0 behaves as 2 wherever a
    route back exists; rp_filter=strict sets 1), on a shape with an
    interface netavark did not loosen (`loosened`: netavark >= 1.11 writes
    2 on its bridges' veths, which max(all, interface) keeps whatever `all`
    is)."""
    if MODES[mode].get(MODE) == "loose" or RP_FILTER in MODES[mode]:
        return ("strict",)
    if loosened and all(kind in ("bridge", "internal") for kind in shape.kinds):
        return ("strict",)
    return tuple(FILTERINGS)


def applies(stack: Stack, shape: Shape, mode: str, filtering: str) -> bool:
    """Whether `stack` makes this cell: its netavark has the shape's
    drivers, and the filtering gives other effective filters than strict
    there (filterings())."""
    return (all(kind in (*stack.drivers, "internal") for kind in shape.kinds)
            and filtering in filterings(shape, mode, stack.loosens_bridges))


def cell_annotations(mode: str, filtering: str) -> dict[str, str]:
    """A container's annotations: the mode's, and the lab's for its filtering."""
    return {**MODES[mode], **({FILTERING_KEY: filtering} if filtering != "strict" else {})}


def check_state(c: Container, shape: Shape, mode: str, metric: Metric = same_metric,
                filtering: str = "strict") -> None:
    """What the mode must have made of the namespace (before measuring)."""
    annotations = MODES[mode]
    start = FILTERINGS[filtering]
    defaults = [str(r["dev"]) for r in c.default_routes()]
    rules = c.ns("ip", "rule").stdout + c.ns("ip", "-6", "rule").stdout
    if len(shape.uplinks) < 2 or not annotations:
        # One uplink: nothing is ever changed, whatever the mode.
        assert sorted(defaults) == sorted(shape.uplinks), defaults
        assert "lookup 2" not in rules, rules
        assert c.sysctl("ipv4/conf/all/rp_filter") == start
        return
    if annotations[MODE] == "loose":
        assert sorted(defaults) == sorted(shape.uplinks), defaults
        for conf in ("all", "default", *DEVICES):
            assert c.sysctl(f"ipv4/conf/{conf}/rp_filter") == 2, conf
        return
    assert defaults == [shape.kept(metric)], defaults
    assert c.sysctl("ipv4/conf/all/rp_filter") == start  # filtering as it was
    if shape.ipv6:
        (v6,) = c.default_routes(6)
        assert "nexthops" not in v6 and v6["dev"] == "eth0", v6
    if annotations[MODE] == "source-routing":
        for dev, addresses in c.interfaces().items():
            assert f"oif {dev} lookup" in rules, rules
            for found in addresses:
                assert f"from {found} lookup" in rules, rules
    if RP_FILTER in annotations:
        for conf in ("all", "default", *DEVICES):
            assert c.sysctl(f"ipv4/conf/{conf}/rp_filter") == 1, conf


def port_device(c: Container, port: int) -> str:
    """The container's device a port published on `port` leads to."""
    address = port_target(c.host("nft", "list", "ruleset").stdout, port)
    (dev,) = [dev for dev, found in c.interfaces().items() if address in found]
    return dev


def check_result(result: dict[str, float], shape: Shape, mode: str, buggy: bool,
                 metric: Metric = same_metric, port_device: str = "eth0",
                 strict_host: bool = False) -> None:
    """What each mode must give, per case. `buggy`: this lab's podman leaves
    the shape losing packets without the hook; `port_device`: where the
    published port leads (shape.port); `strict_host`: the host filters
    strictly on bridges netavark loosened (a RHEL-like host), so that what
    comes in on a loosened container is still lost on the way back."""
    uplink_cases = [case for case in result
                    if not any(dev not in shape.uplinks and dev in case for dev in DEVICES)]
    if len(shape.uplinks) < 2:
        # The bridge works in every mode, the internal network stays unreachable.
        assert all(result[case] == 0 for case in uplink_cases), result
        assert result["-I eth1"] == 100, result
        return
    first = shape.first(metric)
    if mode == "no annotation" and buggy and first is not None:
        # netavark 2.0: everything leaves by the first uplink, the macvlan.
        # Replies from the bridge's address go that way too, with that
        # source: the far side drops them, and a published port (DNAT'd to
        # that address) never answers.
        (other,) = set(shape.uplinks) - {first}
        assert result["unbound"] == 0, result
        assert result[f"-I {other} addr"] == 100 and result[f"TCP in {other}"] == 100, result
        if shape.port:
            assert result[PORT_CASE] == 100, result
    elif mode == "no annotation":
        if buggy:
            assert result["unbound"] > 20, result
            # The first default's device 0, the other's 100: replies there
            # fail the strict check.
            assert sorted((result["-I eth0"], result["-I eth1"])) == [0, 100], result
        else:
            # What leaves gets its replies; what comes in, unless the host
            # drops the replies that leave by the other bridge.
            assert all(result[case] == 0 for case in uplink_cases
                       if not strict_host or family(case) == "outbound"), result
    elif mode == "loose":
        # Outbound fixed; replies to eth1's address may still leave by eth0
        # (and be dropped on the far side): not asserted, measured.
        assert all(result[case] == 0 for case in result
                   if case.startswith("unbound") or case in ("-I eth0", "-I eth1")), result
    elif mode == "one-default":
        (other,) = set(shape.uplinks) - {shape.kept(metric)}
        assert all(result[case] == 0 for case in result
                   if other not in case and case != PORT_CASE), result
        if shape.port:
            # Led to the other uplink's address, the port's replies leave by
            # the kept one, as those of connections into that address do:
            # whether they arrive is the host's filter's call (strict on the
            # podman 4 lab, not on podman 5's bridges).
            expected = result[f"TCP in {other}"] if port_device == other else 0
            assert result[PORT_CASE] == expected, result
        # The other uplink has no route out any more: by design.
        assert all(result[case] == 100 for case in result
                   if case.startswith(f"-I {other}") and "addr" not in case), result
    else:
        assert all(value == 0 for value in result.values()), result


# A case loses packets when at least this share is lost: the failures
# measured are 40-55 % (two routes taken in turn) or 100 %; a ping cut
# short on a loaded machine is not one of them (seen: 3 of 13).
DROPPED = 20.0


def promised(result: dict[str, float], shape: Shape, mode: str, metric: Metric) -> list[str]:
    """The cases the container's networks and mode promise: not those of an
    internal network, nor one-default's other uplink (its documented trade:
    it answers only its own subnet); a published port always."""
    given_up = [dev for dev in DEVICES if dev not in shape.uplinks]
    if MODES[mode].get(MODE) == "one-default" and len(shape.uplinks) == 2:
        given_up.append(next(dev for dev in shape.uplinks if dev != shape.kept(metric)))
    return [case for case in result if case == PORT_CASE
            or not any(case.startswith((f"-I {dev}", f"ping in {dev}", f"TCP in {dev}"))
                       for dev in given_up)]


def family(case: str) -> str:
    """What a case probes, in diagnose's words (diagnosis.py's kinds)."""
    if case == PORT_CASE:
        return "port"
    return "address" if "addr" in case or " in " in case else "outbound"


def dropped(result: dict[str, float], shape: Shape, mode: str, metric: Metric) -> list[str]:
    """The promised cases that lose packets."""
    return [case for case in promised(result, shape, mode, metric) if result[case] >= DROPPED]


@dataclass(frozen=True)
class Said:
    """What `diagnose --json` said of a container: its status and the kinds
    of its problems."""

    status: str
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, report: dict[str, Any]) -> Said:
        (container,) = report["containers"]
        kinds = {f["kind"] for f in container["findings"] if f["severity"] == "problem"}
        # No default route at all: nothing leaves.
        return cls(container["status"], tuple(sorted(
            "outbound" if k == "no-default" else k for k in kinds)))

    @classmethod
    def parse(cls, text: str) -> Said:
        """The inverse of str()."""
        status, _, kinds = text.partition(" (")
        return cls(status, tuple(kinds.rstrip(")").split(", ")) if kinds else ())

    def __str__(self) -> str:
        return f"{self.status} ({', '.join(self.kinds)})" if self.kinds else self.status


def disagreement(said: Said, result: dict[str, float], shape: Shape, mode: str,
                 metric: Metric) -> str | None:
    """Where the verdict and the packets part: a problem exactly when a
    promised case loses packets, naming the kinds of the cases that do."""
    lost = dropped(result, shape, mode, metric)
    kinds = tuple(sorted({family(case) for case in lost}))
    if (said.status == "problem") != bool(lost) or said.kinds != kinds:
        return f"diagnose said {said}, measured {kinds or 'nothing'} lost: {lost}"
    return None


def measure_and_check(c: Container, shape: Shape, mode: str, buggy: bool,
                      published: tuple[str, int], record: Callable[[dict[str, float], str], None],
                      diagnose: Callable[[], dict[str, Any]],
                      metric: Metric = same_metric, filtering: str = "strict",
                      strict_host: bool = False) -> None:
    """measure(), check_result() (under strict filtering: what each mode is
    for; under another, that source routing loses nothing), and `diagnose
    --json` held against the measurement; then record() both. A measurement
    that fails either check is taken once more (diagnose asked again), and
    the second one is recorded and judged: `make test` runs two parts at
    once on two cores, and under that load a ping can be cut short or a
    neighbour probe time out (seen once in ten full runs: 3 of 13 pings
    lost where a mode loses none). What a mode is checked for, 0 against
    45-100 % lost, does not come and go like that."""
    port = port_device(c, published[1]) if shape.port else "eth0"
    for last in (False, True):
        result, said = measure(c, shape, published), Said.of(diagnose())
        try:
            if filtering == "strict":
                check_result(result, shape, mode, buggy, metric, port, strict_host)
            elif MODES[mode].get(MODE) == "source-routing":
                assert all(result[case] == 0 for case in promised(result, shape, mode, metric)), \
                    result
            wrong = disagreement(said, result, shape, mode, metric)
            assert wrong is None, wrong
        except AssertionError as failed:
            if last:
                record(result, str(said))
                raise
            print(f"\n{shape.name}, {mode}, {filtering}: measured again after {failed}")
        else:
            record(result, str(said))
            return


SAID = "diagnose said"


@dataclass
class Row:
    setup: str  # e.g. "runc, netavark"
    shape: Shape
    mode: str
    result: dict[str, float]
    said: str = ""  # diagnose's verdict (Said)


class Results:
    """Every measured row of a run: printed as one table per shape at the
    end, and written as JSON to the file named by `env` when it is set."""

    def __init__(self, title: str, env: str) -> None:
        self.title, self.env = title, env
        self.rows: list[Row] = []

    def record(self, setup: str, shape: Shape, mode: str, result: dict[str, float],
               said: str = "") -> None:
        self.rows.append(Row(setup, shape, mode, result, said))

    def markdown(self) -> Iterator[str]:
        """The tables, in markdown (docs/shapes.md, the end of a pytest
        run): one per shape, a row per setup and mode, a column per case."""
        for shape in dict.fromkeys(row.shape for row in self.rows):
            cases = shape.cases()
            yield ""
            yield f"{shape.name} (eth0 {shape.kinds[0]}, eth1 {shape.kinds[1]}):"
            yield ""
            yield "| setup, mode | " + " | ".join(cases) + " | diagnose said |"
            yield "|---" * (len(cases) + 2) + "|"
            for row in self.rows:
                if row.shape == shape:
                    cells = (f"{row.result[c]:.3g}" if c in row.result else "" for c in cases)
                    yield (f"| {row.setup}, {row.mode} | " + " | ".join(cells)
                           + f" | {row.said} |")

    def dump(self) -> str:
        """The rows as JSON, one key per row: "SETUP, SHAPE, MODE": the
        measured cases, and what diagnose said ("diagnose said")."""
        return json.dumps({f"{row.setup}, {row.shape.name}, {row.mode}":
                           {**row.result, SAID: row.said} for row in self.rows}, indent=2) + "\n"

    def add(self, dumped: str) -> None:
        """Rows of `dump()` (a file, or a pytest-xdist worker's)."""
        by_name = {shape.name: shape for shape in ALL_SHAPES}
        for key, row in json.loads(dumped).items():
            setup, name, mode = key.rsplit(", ", 2)
            said = row.pop(SAID, "")
            self.record(setup, by_name[name], mode, row, said)

    @classmethod
    def load(cls, path: Path) -> Results:
        """Rows written by `summary` ($MULTIHOME_LAB_RESULTS)."""
        found = cls(path.name, "")
        found.add(path.read_text())
        found.sort()
        return found

    def sort(self) -> None:
        """By setup, then in the order of MODES."""
        self.rows.sort(key=lambda row: (row.setup, list(MODES).index(row.mode)))

    # With pytest-xdist each worker measures some rows: it hands them to the
    # controller, which prints and writes them all.
    _WORKER_KEY = "multihome_shapes"

    def from_worker(self, session: pytest.Session) -> None:
        """pytest_sessionfinish: a worker's rows, to the controller."""
        output = getattr(session.config, "workeroutput", None)
        if output is not None:
            output[f"{self._WORKER_KEY}:{self.env}"] = self.dump()

    def to_controller(self, node: object) -> None:
        """pytest_testnodedown: the rows a worker measured."""
        dumped = getattr(node, "workeroutput", {}).get(f"{self._WORKER_KEY}:{self.env}")
        if dumped:
            self.add(dumped)

    def summary(self, reporter: pytest.TerminalReporter) -> None:
        """At the end of a pytest run (pytest_terminal_summary)."""
        if not self.rows:
            return
        self.sort()  # workers end in any order
        reporter.section(f"{self.title}: network shapes")
        for line in self.markdown():
            reporter.write_line(line)
        out = settings.results_file(self.env)
        if out:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(self.dump())
            reporter.write_line(f"written to {out}")


def agreement(results: Results) -> Iterator[str]:
    """Per stack, in markdown: its cells, those where diagnose agreed with
    the measurement, its verdicts, and the cases lost behind each kind of
    problem it named."""
    from .roots import STACKS

    yield ("| stack | cells | diagnose agreed | problem | risk | healthy "
           "| cases lost behind a problem |")
    yield "|---|---|---|---|---|---|---|"
    for name in dict.fromkeys(row.setup.split(", ")[0] for row in results.rows):
        rows = [row for row in results.rows if row.setup.split(", ")[0] == name]
        metric = STACKS[name].metric
        agreed = sum(disagreement(Said.parse(row.said), row.result, row.shape, row.mode, metric)
                     is None for row in rows)
        statuses = [Said.parse(row.said).status for row in rows]
        behind: dict[str, set[str]] = {}
        for row in rows:
            for case in dropped(row.result, row.shape, row.mode, metric):
                behind.setdefault(family(case), set()).add(case.replace(" v6", ""))
        cases = "; ".join(f"{kind}: {', '.join(sorted(found))}"
                          for kind, found in sorted(behind.items()))
        yield (f"| {name} | {len(rows)} | {agreed} | {statuses.count('problem')} | "
               f"{statuses.count('risk')} | {statuses.count('healthy')} | {cases} |")


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--agreement"]:
        for arg in sys.argv[2:]:
            print("\n".join(agreement(Results.load(Path(arg)))))
    else:
        for arg in sys.argv[1:]:
            print("\n".join(Results.load(Path(arg)).markdown()))
