"""pid 1 of the podman 5 lab (runs inside the Debian 13 root, its python3).

A pid namespace's first process must reap the orphans reparented to it
(conmon double-forks, so every container's monitor ends up here), and the
lab has no journald: this process also owns /dev/log, so that what the hook
logs (the only trace of a refusal under crun) can be read by the tests in
/run/mhlab/syslog. SIGKILL from outside ends the lab (pid 1 ignores
everything else it has no handler for).
"""

from __future__ import annotations

import os
import select
import socket

STATE = "/run/mhlab"


def reap() -> None:
    while True:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return


def main() -> None:
    os.makedirs(STATE, exist_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("/dev/log")
    os.chmod("/dev/log", 0o666)
    with open(f"{STATE}/syslog", "ab", buffering=0) as log:
        # Written last: the host waits for it before it runs anything here.
        with open(f"{STATE}/ready", "w"):
            pass
        while True:
            reap()
            readable, _, _ = select.select([sock], [], [], 0.5)
            if readable:
                log.write(sock.recv(65536).rstrip(b"\0\n") + b"\n")


if __name__ == "__main__":
    main()
