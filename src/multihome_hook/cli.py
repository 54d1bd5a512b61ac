"""The operator's commands: diagnose, apply, watch.

`oci-multihome-hook` with arguments (or at a terminal) lands here; without,
it is the OCI hook (hook.py), whose start-up never pays for argparse or
pydantic.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from typing import IO, TYPE_CHECKING, Any, NoReturn

from . import backlog, containers, log, netns, report, snapshot
from .errors import ERROR, INTERRUPTED, OK, PROBLEM, HookError, exit_status_text
from .fix import APPLY, APPLY_PRIMARY, WATCH, Caller, Fix, Outcome, fix, preview
from .keep import how_to_keep, permanent, pinned
from .models import ApplyReport, ApplyResult, DiagnoseReport, to_json
from .modes import FIXES, MODE_KEY, MODES, Mode, parse_mode
from .primary import PRIMARY_KEY

if TYPE_CHECKING:
    from .models import ApplyStatus, ContainerReport

PROG = "oci-multihome-hook"
# Where both packages install the README and docs/ (what --help points to).
DOCS = f"/usr/share/doc/{PROG}"
REFERENCE = f"{DOCS}/docs/reference.md"
_STATUS = {"healthy": OK, "host-network": OK, "risk": OK, "problem": PROBLEM, "error": ERROR}
LASTS = "until the container is restarted or recreated"


def write(text: str, stream: IO[str] | None = None) -> None:
    """Write and flush. A reader that went away (`| head`) ends the output,
    not the work: the rest goes to /dev/null, quietly. Any other failure
    (a full disk) is an error of its own, said once."""
    stream = stream or sys.stdout
    try:
        stream.write(text)
        stream.flush()
    except OSError as exc:
        # What is left in the buffer must not fail again at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
        if not isinstance(exc, BrokenPipeError):
            raise HookError(f"cannot write the output: {exc.strerror}") from None


def say(line: str) -> None:
    write(line + "\n")


def _failed(ref: str, exc: HookError) -> None:
    sys.stdout.flush()  # in place: after what was printed for the containers before
    log.error(f"{ref}: {exc}")


def _diagnose(args: argparse.Namespace) -> int:
    refs = list(args.containers)
    if args.all:
        try:
            running = containers.running()
        except HookError as exc:
            if args.json:  # a document all the same, for whatever reads it
                say(to_json(DiagnoseReport(containers=[], error=str(exc))))
            raise
        refs += [r for r in running if r not in refs]
        if not refs:
            say("no running podman container")
            return OK
    reports: list[ContainerReport] = []
    for ref in refs:
        found, how_to_fix = report.diagnose(ref)
        reports.append(found)
        if found.error:
            _failed(ref, HookError(found.error))
        if not args.json and not found.error:
            for line in report.lines(found, how_to_fix):
                say(line)
    if args.json:
        say(to_json(DiagnoseReport(containers=reports)))
    status = {**_STATUS, "risk": PROBLEM} if args.fail_on == "risk" else _STATUS
    return max(status[r.status] for r in reports)


def _fix_in(target: containers.Target, mode: Mode, caller: Caller, given: str | None = None,
            *, dry_run: bool = False, answered: int | None = None) -> Outcome:
    """fix (or preview) for `caller`, in the container's namespace, with the
    primary `given`, else its annotation's; `answered`: when podman's
    answer that is `target` came (backlog.ticks()), to refuse a process
    newer than that."""
    request = Fix(mode, target.primary_given(given), strict=target.strict(mode), caller=caller,
                  networks=target.networks)

    def work() -> Outcome:
        if answered is not None:
            backlog.not_newer(target.pid, answered)
        return (preview if dry_run else fix)(request)

    return netns.run_in(target.pid, work)


def _apply_to(ref: str, mode: Mode, args: argparse.Namespace) -> tuple[ApplyResult, bool]:
    """The result, and whether the container's own annotation asks for `mode`."""
    target = None
    try:
        target = containers.find(ref)
        caller = APPLY if args.primary is None else APPLY_PRIMARY
        outcome = _fix_in(target, mode, caller, args.primary, dry_run=args.dry_run)
    except HookError as exc:
        _failed(ref, exc)
        return ApplyResult(container=ref, id=None if target is None else target.id,
                           pid=None if target is None else target.pid, status="error",
                           error=str(exc), mode=mode.name, primary=args.primary,
                           dry_run=args.dry_run), False
    primary = args.primary if args.primary is not None else target.primary
    # Without a primary, the one that keeps today's choice, as it was read.
    pin = None if primary is not None else pinned(outcome.routing, None,
                                                  target.attached(outcome.routing))
    status: ApplyStatus = ("planned" if args.dry_run else
                           "applied" if outcome.changes else "unchanged")
    result = ApplyResult(container=ref, id=target.id, pid=target.pid, status=status,
                         mode=mode.name, primary=primary, dry_run=args.dry_run,
                         changes=[str(c) for c in outcome.changes], skipped=outcome.skipped,
                         permanent=permanent(mode, primary, pin))
    return result, target.mode == mode.name


def _print_applied(result: ApplyResult, annotated: bool) -> None:
    title = result.container + (f" ({result.id[:12]})" if result.id else "")
    title += f": mode {result.mode}{', dry run' if result.dry_run else ''}"
    if result.skipped:
        say(f"{title}: {result.skipped}")
        return
    changes = result.changes
    say(f"{title}: {len(changes)} change(s)" if changes else f"{title}: nothing to change")
    for change in changes:
        say(f"      {change}")
    if result.status != "applied":
        return
    if annotated:
        say(f"  lasts {LASTS}; the container's own {MODE_KEY} applies again at its next start")
        return
    say(f"  lasts {LASTS}; to keep it:")
    for line in how_to_keep(result.permanent):
        say(f"    {line}")


def _apply(args: argparse.Namespace) -> int:
    mode = parse_mode(args.mode)
    results = []
    for ref in args.containers:
        result, annotated = _apply_to(ref, mode, args)
        results.append(result)
        if not args.json and result.status != "error":
            _print_applied(result, annotated)
    if args.json:
        say(to_json(ApplyReport(containers=results)))
    return ERROR if any(r.status == "error" for r in results) else OK


def _announce(line: str) -> None:
    """watch's lines: on stdout and in syslog."""
    say(line)
    log.info(line)


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(OK)


def _addresses() -> list[str]:
    return [a.address for a in snapshot.current().addresses]


def _wait_for(target: containers.Target, network: str, timeout: float = 5.0) -> None:
    """Until the container has its address in `network` (as podman
    inspect gave it): podman reports a connect before the interface exists."""
    import ipaddress

    nets = [n for name, subnets in target.networks or () if name == network for n in subnets]
    deadline = time.monotonic() + timeout
    while nets and time.monotonic() < deadline:
        found = [ipaddress.ip_address(a) for a in netns.run_in(target.pid, _addresses)]
        if any(a in n for a in found for n in nets if a.version == n.version):
            return
        time.sleep(0.1)


# watch: how long a podman command may take (a hung one holds one worker,
# not the watch), and how many containers are handled at once.
WATCH_PODMAN_TIMEOUT_S, WORKERS = 15.0, 4
STOP_S = 5.0  # when stopped, how long the containers under way may take


def _on_event(pending: backlog.Pending, waiting: backlog.Backlog) -> str | None:
    """Converge a container its events concern, unless it is gone (its
    events are then dropped, podman not asked); the line to log, if any."""
    known = waiting.known(pending.id)
    if pending.ended or (known is not None and not pending.started and not known.alive()):
        waiting.dropped(pending)
        return None
    if known is not None and not known.acts:
        return None  # not annotated with a mode that changes anything
    target = containers.find(pending.id, timeout=WATCH_PODMAN_TIMEOUT_S)
    answered = backlog.ticks()
    mode = None if target.mode is None else parse_mode(target.mode)
    acts = mode is not None and mode.changes
    waiting.remember(pending.id, backlog.Known(target.pid, backlog.process_start(target.pid),
                                               acts))
    if mode is None or not acts:
        return None
    for network in pending.connected():
        _wait_for(target, network)
    outcome = _fix_in(target, mode, WATCH, answered=answered)
    if not pending.networks and not outcome.changes:
        return None  # the hook did it already (unless a user namespace kept it from it)
    return f"container {pending.id[:12]}: {pending.describe()}, mode {mode}: {outcome}"


def _gone(pending: backlog.Pending, waiting: backlog.Backlog, exc: HookError) -> bool:
    """Whether `exc` came from the container going away meanwhile (podman
    says so, or the process podman named is no more)."""
    if isinstance(exc, (containers.Gone, backlog.Stale)):
        return True
    known = waiting.known(pending.id)
    return known is not None and not known.alive()


def _work(waiting: backlog.Backlog) -> None:
    """One worker: containers from the backlog until it is closed."""
    while (pending := waiting.take()) is not None:
        try:
            behind = waiting.behind(pending)
            if behind:
                log.warning(behind)
            line = _on_event(pending, waiting)
            if line:
                _announce(line)
        except HookError as exc:  # one container's trouble must not stop the watch
            if not _gone(pending, waiting, exc):
                log.error(f"container {pending.id[:12]}: {exc}")
                continue
            waiting.dropped(pending)
            line = f"container {pending.id[:12]}: gone before watch came to it ({exc})"
            _announce(line)
        except Exception:  # a bug: its traceback, and the others carry on
            traceback.print_exc()
        finally:
            waiting.done(pending)


def _doctor(args: argparse.Namespace) -> int:
    from . import doctor
    from .models import DoctorHookFile, DoctorNetwork, DoctorReport

    facts = doctor.gather()
    verdict = doctor.judge(facts)
    if not args.json:
        for line in doctor.lines(facts, verdict):
            say(line)
        return verdict.status
    say(to_json(DoctorReport(
        rp_filter_all=facts.rp_filter_all, rp_filter_default=facts.rp_filter_default,
        effective_rp_filter=facts.effective, podman=facts.podman,
        network_backend=facts.backend, network_backend_version=facts.backend_version,
        runtime=facts.runtime,
        networks=[DoctorNetwork(name=n.name, driver=n.driver, host_rp_filter=n.host_filter)
                  for n in facts.networks],
        hooks_dirs=list(facts.hooks_dirs), hook_installed_in=list(facts.hook_in),
        invalid_hooks=[DoctorHookFile(path=p, reason=r) for p, r in facts.invalid_hooks],
        default_mode=facts.default_mode, affected=verdict.affected,
        reasons=verdict.reasons, notes=verdict.notes, next=verdict.next)))
    return verdict.status


def _watch(args: argparse.Namespace) -> int:
    import threading

    # SIGTERM (systemctl stop) unwinds like ^C, so `podman events` is stopped too.
    signal.signal(signal.SIGTERM, _stop)
    log.info("watching podman events: applying io.multihome.mode again on network connect "
             "and disconnect, and on start")
    waiting = backlog.Backlog()
    workers = [threading.Thread(target=_work, args=(waiting,), name=f"watch-{i}", daemon=True)
               for i in range(WORKERS)]
    for worker in workers:
        worker.start()
    try:
        for event in containers.events():
            waiting.add(event)
    except KeyboardInterrupt:
        return OK
    finally:
        # What is being applied ends (a fix is quick; a podman command that
        # is not is cut short); the rest waits for the next watch.
        waiting.close()
        deadline = time.monotonic() + STOP_S
        for worker in workers:
            worker.join(timeout=max(0.0, deadline - time.monotonic()))
        if waiting.read:  # not when podman events failed at once
            line = f"watch stopped: {waiting.summary()}"
            _announce(line)
    return OK


class _Parser(argparse.ArgumentParser):
    """No abbreviated options, examples shown as written, and output that
    survives a closed pipe."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(allow_abbrev=False,
                         formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)

    def _print_message(self, message: str, file: Any = None) -> None:
        if message:
            write(message, file or sys.stderr)


class _Version(argparse.Action):
    """The installed version, looked up only when asked (importlib.metadata
    is no cost the hook should pay)."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace,
                 values: object, option_string: str | None = None) -> NoReturn:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("oci-multihome-hook")
        except PackageNotFoundError:
            found = "unknown (not installed as a package)"
        write(f"{PROG} {found}\n")
        parser.exit()


CONTAINER_HELP = "a podman container name or id, or pid:N for any process's network namespace"
PRIMARY_HELP = ("which network keeps its default route: a podman network name, an interface "
                "(eth1), a subnet (198.18.10.0/24) or a gateway address (default: the "
                f"container's {PRIMARY_KEY} annotation, else the lowest metric)")

DESCRIPTION = f"""\
Fix multi-homed podman containers whose replies vanish under strict rp_filter.

Without arguments, and with its standard input not a terminal, this program
is the OCI hook: podman runs it at createRuntime with the container's state
on stdin, for containers annotated {MODE_KEY}."""

EPILOG = f"""\
examples:
  {PROG} diagnose --all
  {PROG} apply --mode source-routing --primary lan web
  {PROG} COMMAND --help

modes ({MODE_KEY}=MODE): {', '.join(m.name for m in MODES)}

exit status (the hook's, when podman runs it: man {PROG}):
{exit_status_text()}"""

DIAGNOSE_EPILOG = f"""\
Shows each container's interfaces with their podman networks, effective
rp_filter, default routes and the verdict; for a problem, what each mode
would change, the command that does it now and the annotation (podman run,
Quadlet) that keeps it. Containers that cannot be diagnosed are reported in
place (one line on stderr) and the others still are.

examples:
  {PROG} diagnose web
  {PROG} diagnose --all
  {PROG} diagnose --json web db | jq '.containers[].status'

Each finding is a claim about packets:
  problem  traffic the networks and mode promise is dropped now: replies to
           what leaves by an uplink (outbound), replies to an address
           (address), a published port (port), no default route (no-default)
  risk     gets through here only because nothing on the way checks sources
           (a reply leaving by another bridge behind the same NAT)
  limit    what the mode gives up by design (one-default's other uplinks,
           an internal network); never a published port
  note     worth knowing, drops nothing
A container's status is its worst finding: PROBLEM, RISK or healthy.

exit status: 0 healthy or at risk (or --network host: not diagnosed), 1 a
problem (with --fail-on risk: a risk too), 2 an error (the worst of all
containers)."""

APPLY_EPILOG = f"""\
Does now what the hook does when a container starts, with the same rollback:
for containers started before the annotation was there, or that got a network
by `podman network connect`. The change lasts until the container is
restarted or recreated; the annotation makes it permanent.

examples:
  {PROG} apply --mode loose web
  {PROG} apply --mode one-default --primary lan web
  {PROG} apply --mode source-routing --dry-run web db
  {PROG} apply --mode source-routing --json web

exit status: 0 done (or nothing to change), 2 an error in any container.

which mode: {DOCS}/README.md (Choose a mode)
the JSON document: {REFERENCE}"""

DOCTOR_EPILOG = f"""\
Reads the host's rp_filter defaults (a container's namespace copies them),
podman's version, network backend, OCI runtime and networks, the
containers.conf files podman reads (hooks_dir, a host-wide {MODE_KEY}),
and where the hook is installed; says whether containers on two networks
lose replies here, why, and the next command.

examples:
  {PROG} doctor
  {PROG} doctor --json

exit status: 0 fine (or affected, with the hook where podman reads it), 1
affected without the hook where podman reads hooks, 2 error."""

WATCH_EPILOG = f"""\
Follows `podman events`; when a container annotated {MODE_KEY} gets a
network connected or disconnected (no hook runs then), or starts (a user
namespace of its own kept the hook from its networks), applies its mode
again: converges to what the mode wants now. One line per change on stdout
and in syslog. Events wait folded per container (one run for all, four
containers at a time); those of a container gone meanwhile are dropped (an
info line when podman had to say so); "watch is behind" (a warning) gives
the backlog when events wait over a second. Runs until stopped; shipped as
oci-multihome-hook-watch.service (not enabled).

examples:
  {PROG} watch
  systemctl enable --now oci-multihome-hook-watch.service

exit status: 0 when stopped (SIGTERM, Ctrl-C), 2 if podman events fails."""


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    parser = _Parser(prog=PROG, description=DESCRIPTION, epilog=EPILOG)
    parser.add_argument("-V", "--version", action=_Version, nargs=0,
                        help="print the installed version and exit")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND",
                                     parser_class=_Parser,
                                     help="what to do (COMMAND --help: its options)")
    diagnose = commands.add_parser(
        "diagnose", help="explain what drops packets, and how to fix it",
        description="Explain what drops a container's packets, and how to fix it.",
        epilog=DIAGNOSE_EPILOG)
    diagnose.add_argument("containers", nargs="*", metavar="CONTAINER", help=CONTAINER_HELP)
    diagnose.add_argument("--all", action="store_true",
                          help="every running podman container (besides those named)")
    diagnose.add_argument("--json", action="store_true",
                          help="one JSON document (schema version 3, man "
                               f"{PROG}: diagnose --json)")
    diagnose.add_argument("--fail-on", choices=("problem", "risk"), default="problem",
                          help="exit 1 for a problem (default), or for a risk too")
    diagnose.set_defaults(run=_diagnose)
    apply = commands.add_parser(
        "apply", help="apply a mode to running containers now",
        description="Apply a mode to running containers now.", epilog=APPLY_EPILOG)
    apply.add_argument("containers", nargs="+", metavar="CONTAINER", help=CONTAINER_HELP)
    apply.add_argument("--mode", required=True, choices=[m.name for m in FIXES],
                       help="; ".join(f"{m.name}: {m.summary}" for m in FIXES))
    apply.add_argument("--primary", metavar="NETWORK", help=PRIMARY_HELP)
    apply.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    apply.add_argument("--json", action="store_true",
                       help="one JSON document (apply schema version 1)")
    apply.set_defaults(run=_apply)
    doctor = commands.add_parser(
        "doctor", help="is this host affected? rp_filter, podman, networks, the hook",
        description="Judge the host, without a container: is it affected, and what next.",
        epilog=DOCTOR_EPILOG)
    doctor.add_argument("--json", action="store_true",
                        help="one JSON document (doctor schema version 1)")
    doctor.set_defaults(run=_doctor)
    watch = commands.add_parser(
        "watch", help=f"re-apply {MODE_KEY} when podman network connect adds a network",
        description=f"Re-apply {MODE_KEY} when `podman network connect` adds a network.",
        epilog=WATCH_EPILOG)
    watch.set_defaults(run=_watch)
    return parser, {"diagnose": diagnose, "apply": apply, "doctor": doctor, "watch": watch}


def _unknown_option(argv: Sequence[str], parser: argparse.ArgumentParser,
                    commands: dict[str, argparse.ArgumentParser]) -> None:
    """Stop at the first option that its command does not have, with that
    command's usage: argparse would first complain of a missing required
    one (`apply --mod loose` said "required: --mode")."""
    current = parser
    for arg in argv:
        if arg == "--":
            return
        if current is parser and arg in commands:
            current = commands[arg]
        elif (arg.startswith("-") and arg != "-"
              and arg.split("=", 1)[0] not in current._option_string_actions):
            current.error(f"unrecognized arguments: {arg}")


def _parse(argv: Sequence[str]) -> argparse.Namespace:
    parser, commands = _parser()
    if not argv:
        parser.error("a command is needed (podman runs this program without arguments, "
                     "with the OCI state on stdin)")
    _unknown_option(argv, parser, commands)
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse leaves these to the top level: the command's usage says more
        commands[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command == "diagnose" and not args.containers and not args.all:
        commands["diagnose"].error("name a CONTAINER, or --all for every running one")
    return args


def _join_rootless_podman(argv: Sequence[str]) -> int | None:
    """Rootless podman keeps its containers' namespaces inside the user's user
    namespace, where only `podman unshare` gives the right to enter them: run
    again in there (podman marks it with _CONTAINERS_USERNS_CONFIGURED) and
    return its exit status; None when already there, or root."""
    if os.geteuid() == 0 or os.environ.get("_CONTAINERS_USERNS_CONFIGURED"):
        return None
    try:
        code = subprocess.run(["podman", "unshare", sys.executable, sys.argv[0], *argv]).returncode
    except OSError as exc:
        raise HookError("cannot run podman unshare (needed without root): "
                        f"{exc.strerror}") from None
    if code in (OK, PROBLEM, ERROR, INTERRUPTED):
        return code
    # podman's own failure (125 and the like), never "problem found"
    raise HookError(f"podman unshare failed with exit status {code}")


def main(argv: Sequence[str]) -> int:
    try:
        args = _parse(argv)
        if args.command != "watch":  # a service: its lines belong in the journal
            log.stderr_only()
        run: Callable[[argparse.Namespace], int] = args.run
        joined = _join_rootless_podman(argv)
        return run(args) if joined is None else joined
    except HookError as exc:
        log.error(str(exc))
        return ERROR
    except KeyboardInterrupt:
        return INTERRUPTED
    except Exception:  # a bug: the traceback is for its report; the status says error
        traceback.print_exc()
        return ERROR
