"""The CLI's conventions, without root or podman: usage at a terminal,
--version, no abbreviations, each command's own usage, help with examples,
quiet ends (Ctrl-C, a closed pipe), one table of exit statuses."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from importlib.metadata import version
from pathlib import Path

import pytest

from multihome_hook import cli, log
from multihome_hook.errors import EXIT_STATUS, INVALID_STATE

REPO = Path(__file__).resolve().parents[2]
HOOK = [sys.executable, "-c", "import sys; from multihome_hook.hook import main; sys.exit(main())"]


def run(*argv: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HOOK, *argv], capture_output=True, text=True, timeout=30,
                          input=stdin)


def test_no_arguments_at_a_terminal_is_usage_and_exit_2() -> None:
    """Not a hook waiting on its stdin forever: podman never gives it a terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # the child, on the pseudo-terminal
        # A terminal's size, as a real one has: Python 3.9's argparse wraps
        # at every word on a 0-column one.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        os.execv(HOOK[0], HOOK)
    output = b""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:  # EIO: the child has gone, and its terminal with it
                break
            if not chunk:
                break
            output += chunk
        elif os.waitpid(pid, os.WNOHANG) != (0, 0):
            break
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"still waiting at a terminal: {output!r}")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    text = output.decode()
    assert os.waitstatus_to_exitcode(status) == 2, text
    assert text.startswith("usage: oci-multihome-hook [-h] [-V] COMMAND"), text
    assert "a command is needed" in text


def test_no_arguments_on_a_pipe_is_the_hook() -> None:
    proc = run(stdin="")
    assert proc.returncode == INVALID_STATE
    assert proc.stderr == ("oci-multihome-hook: empty OCI state on stdin (this program is run "
                           "by podman as an OCI hook)\n")


@pytest.mark.parametrize("option", ["--version", "-V"])
def test_version(option: str) -> None:
    proc = run(option)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout == f"oci-multihome-hook {version('oci-multihome-hook')}\n"


@pytest.mark.parametrize(("argv", "usage", "message"), [
    (["diagnose", "--al"], "diagnose", "unrecognized arguments: --al"),
    (["diagnose", "--js", "web"], "diagnose", "unrecognized arguments: --js"),
    (["apply", "--mod", "loose", "web"], "apply", "unrecognized arguments: --mod"),
    (["apply", "--mode", "loose", "--dry", "web"], "apply", "unrecognized arguments: --dry"),
    (["apply", "--mode", "LOOSE", "web"], "apply", "argument --mode: invalid choice: 'LOOSE'"),
    (["apply", "web"], "apply", "the following arguments are required: --mode"),
    (["watch", "--now"], "watch", "unrecognized arguments: --now"),
    (["--vers"], "", "unrecognized arguments: --vers"),
    (["diagnose"], "diagnose", "name a CONTAINER, or --all for every running one"),
    (["diagnose", "--json"], "diagnose", "name a CONTAINER, or --all for every running one"),
    (["diag"], "", "argument COMMAND: invalid choice: 'diag'"),
])
def test_errors_show_the_usage_of_the_command_at_fault(argv: list[str], usage: str,
                                                       message: str) -> None:
    proc = run(*argv)
    assert proc.returncode == 2 and proc.stdout == ""
    prog = f"oci-multihome-hook {usage}".strip()
    assert proc.stderr.startswith(f"usage: {prog} ["), proc.stderr
    assert f"{prog}: error: {message}" in proc.stderr, proc.stderr


def test_every_command_and_option_has_help_and_examples() -> None:
    parser, commands = cli._parser()
    for name, command in {"": parser, **commands}.items():
        assert "examples:" in (command.epilog or ""), name
        assert "exit status" in (command.epilog or ""), name
        for action in command._actions:
            assert action.help, f"{name} {action.option_strings or action.dest}"
        proc = run(*filter(None, [name]), "--help")
        assert proc.returncode == 0 and "examples:\n  oci-multihome-hook " in proc.stdout


def test_help_shows_the_commands_exit_statuses_and_fits_a_screen() -> None:
    out = run("--help").stdout
    for command, code, text in EXIT_STATUS:
        shown = re.search(rf"  {re.escape(command)} +{code}  {re.escape(text[:30])}", out)
        assert bool(shown) == (command != "hook"), text
    assert len(out.splitlines()) <= 45, out


def test_reference_and_man_page_show_the_same_exit_status_table() -> None:
    readme = (REPO / "docs" / "reference.md").read_text()
    man = (REPO / "packaging" / "oci-multihome-hook.8").read_text().replace("\\-", "-")
    man = man.replace("\\(em", "-").replace("\\`", "`")
    for command, code, text in EXIT_STATUS:
        assert f"| {command} | {code} | {text} |" in readme, text
        plain = text.replace("`", "")
        assert f".B {command} {code}\n{plain}\n" in man.replace("\\fB", "").replace(
            "\\fR", ""), text


def test_a_closed_stdout_ends_quietly() -> None:
    read_end, write_end = os.pipe()
    os.close(read_end)
    with os.fdopen(write_end, "w") as closed:
        proc = subprocess.run([*HOOK, "--help"], stdout=closed, stderr=subprocess.PIPE,
                              text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (0, "")


def test_a_full_disk_is_one_line_and_an_error() -> None:
    with open("/dev/full", "w") as full:
        proc = subprocess.run([*HOOK, "--help"], stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=30)
    assert (proc.returncode, proc.stderr) == (
        2, "oci-multihome-hook: cannot write the output: No space left on device\n")


def test_ctrl_c_ends_quietly(tmp_path: Path) -> None:
    """Interrupted while podman answers: exit 130, nothing on stderr."""
    fake, started = tmp_path / "podman", tmp_path / "started"
    fake.write_text(f"#!/bin/sh\ntouch {started}\nexec sleep 30\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{tmp_path}:{os.environ['PATH']}")
    # SIGINT as at a terminal: a job a shell started in the background (a
    # CI runner's, say) inherits it ignored.
    with subprocess.Popen([*HOOK, "diagnose", "--all"], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
                          ) as proc:
        # Past the imports, waiting for podman: however long a loaded
        # machine takes to get there.
        deadline = time.monotonic() + 20
        while not started.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert (proc.returncode, out, err) == (130, "", "")


def test_an_operators_mistake_stays_out_of_the_journal(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    logged: list[object] = []
    monkeypatch.setattr("syslog.syslog", lambda *args: logged.append(args))
    monkeypatch.setattr(log, "_to_syslog", [True])
    assert cli.main(["diagnose", "pid:web"]) == 2
    assert capsys.readouterr().err == ("oci-multihome-hook: pid:web: invalid: expected a podman "
                                       "name or id, or pid:NUMBER\n")
    assert logged == []



@pytest.mark.parametrize("argv", [["diagnose", "web"], ["apply", "--mode", "loose", "web"],
                                  ["diagnose", "--all"]])
def test_without_podman_on_path_a_name_is_one_line_and_exit_2(argv: list[str]) -> None:
    """A CRI-O node, sudo's trimmed secure_path, a service's PATH."""
    proc = subprocess.run([*HOOK, *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": "/nonexistent"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "podman is not on PATH" in proc.stderr, proc.stderr


@pytest.mark.parametrize("argv", [["diagnose", "--json", "web"], ["diagnose", "--json", "--all"]])
def test_without_podman_on_path_json_is_still_a_document(argv: list[str]) -> None:
    proc = subprocess.run([*HOOK, *argv], capture_output=True, text=True, timeout=30,
                          env={**os.environ, "PATH": "/nonexistent"})
    assert proc.returncode == 2
    document = json.loads(proc.stdout)
    errors = [c["error"] for c in document["containers"]] or [document["error"]]
    assert all("podman is not on PATH" in e for e in errors), document
