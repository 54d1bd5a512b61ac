"""`make test`'s parts, side by side: each part is a make target that shares
nothing with the others (the podman tests run in labs of their own), so up
to JOBS run at once, the longest first. Each part's output is kept in
build/parts/PART.log and printed whole when the part ends; at the end, the
time of each part and which failed. Every part runs, even after one failed.

    python -m testlab.parts [--jobs N] PART...
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

LOGS = Path("build/parts")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m testlab.parts")
    parser.add_argument("--jobs", type=int, default=2, help="parts at once (default: 2)")
    parser.add_argument("parts", nargs="+", metavar="PART", help="make targets, longest first")
    args = parser.parse_args(argv)
    LOGS.mkdir(parents=True, exist_ok=True)
    waiting = list(args.parts)
    running: dict[str, tuple[subprocess.Popen[bytes], float]] = {}
    took: dict[str, float] = {}
    failed: list[str] = []
    start = time.monotonic()
    while waiting or running:
        while waiting and len(running) < args.jobs:
            part = waiting.pop(0)
            with (LOGS / f"{part}.log").open("wb") as log:
                proc = subprocess.Popen(["make", "--no-print-directory", part],
                                        stdin=subprocess.DEVNULL, stdout=log,
                                        stderr=subprocess.STDOUT)
            running[part] = (proc, time.monotonic())
            print(f"== {part}: started ({time.monotonic() - start:.0f} s)", flush=True)
        time.sleep(1)
        for part, (proc, began) in list(running.items()):
            if proc.poll() is None:
                continue
            del running[part]
            took[part] = time.monotonic() - began
            if proc.returncode != 0:
                failed.append(part)
            sys.stdout.write(f"\n== {part}: {'FAILED' if proc.returncode else 'passed'} "
                             f"in {took[part]:.0f} s; its output:\n")
            sys.stdout.write((LOGS / f"{part}.log").read_text(errors="replace"))
            sys.stdout.flush()
    print(f"\n== make test: the time of each part ({args.jobs} at once)")
    for part in args.parts:
        print(f"{part:<16} {took[part]:5.0f} s")
    print(f"{'in all':<16} {time.monotonic() - start:5.0f} s")
    if failed:
        print(f"== FAILED: {' '.join(failed)}")
        return 1
    print("== all parts passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
