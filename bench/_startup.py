"""Row 7: how long ``starter-cli --help`` takes, beside a bare ``python -c pass``.

For: the wall time of the venv's console script from process start to exit, median of N runs.
Not for: the commands' own work.
"""

from __future__ import annotations

import sys

from _core import Row, Sizes, Target, Workspace, median, venv_tool, wall_times

_HELP: dict[int, list[float]] = {}


def cli_help_times(runs: int) -> list[float]:
    """Wall times of ``runs`` runs of ``starter-cli --help`` (memoised: rows 5 and 7 share it)."""
    if runs not in _HELP:
        cli = venv_tool("starter-cli")
        wall_times([cli, "--help"], 1)  # warm the OS file cache, not counted
        _HELP[runs] = wall_times([cli, "--help"], runs)
    return _HELP[runs]


def cli_help(ws: Workspace, sizes: Sizes) -> list[Row]:
    del ws
    runs = sizes.cli_runs
    ours = median(cli_help_times(runs))
    wall_times([sys.executable, "-c", "pass"], 1)
    bare = median(wall_times([sys.executable, "-c", "pass"], runs))
    return [
        Row(
            "7",
            f"starter-cli --help wall time (median of {runs})",
            "s",
            value=ours,
            baseline=bare,
            baseline_label="python -c pass (wall)",
            target=Target("value<=", 0.3, "<= 0.3 s"),
            extra={"runs_s": cli_help_times(runs)},
        ).judge()
    ]
