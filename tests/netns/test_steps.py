"""The step profile docs/performance.md's table comes from still runs."""

from __future__ import annotations

from bench import steps


def test_steps_times_every_step_of_a_real_run(root: None) -> None:
    rows = steps.profile("source-routing", 2, runs=1)
    timed = [row for row, _, _ in steps.STEPS] + ["imports", "enter", "plan",
                                                  "encode (pyroute2)", "fix, all of it"]
    assert not [row for row in timed if rows.get(row, 0) <= 0], rows
    assert rows["fix, all of it"] >= rows["apply"] + rows["dump routes"]
