"""Benchmark: the TUI with 5,000 configurations (targets: open <= 1.5 s, filter <= 100 ms).

Textual's headless pilot drives the real app over a real SQLite store seeded like the TUI
tests (tests/tui/conftest.py), at 160x48. Measured:
- open: from starting the app to its first screen showing the fleet, workers finished;
- configurations: from pressing `2` to the table holding every row;
- filter: one query set at once, until the table shows the one match; and a query typed key
  by key (each keystroke re-filters all rows), as time per keystroke.

Run: .venv/bin/python -m tests.bench.bench_tui [--configurations 5000] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from textual.widgets import Input

from orchestrator.tui.app import WgfleetApp
from orchestrator.tui.screens.configurations import ConfigurationsScreen
from orchestrator.tui.widgets.virtual_table import VirtualTable
from tests.tui.conftest import TODAY, make_settings, seed, settle


async def measure(extra: int, repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = make_settings(Path(tmp))
        seed(settings, extra=extra)
        started = time.perf_counter()
        app = WgfleetApp(settings, today=TODAY)
        async with app.run_test(size=(160, 48)) as pilot:
            await settle(pilot)
            opened = time.perf_counter() - started
            started = time.perf_counter()
            await pilot.press("2")
            await settle(pilot)
            screen = app.screen
            assert isinstance(screen, ConfigurationsScreen)
            table = screen.query_one(VirtualTable)
            assert len(table.rows) == extra + 5, len(table.rows)
            listed = time.perf_counter() - started
            box = screen.query_one("#filter", Input)
            match = ["user04321-1"] if extra > 4321 else []
            at_once = []
            for _ in range(repeats):
                started = time.perf_counter()
                box.value = "user04321"
                await pilot.pause()
                assert [r.name for r in table.rows] == match
                at_once.append(time.perf_counter() - started)
                box.value = ""
                await pilot.pause()
            box.focus()
            started = time.perf_counter()
            for char in "user04321":
                await pilot.press(char)
            await pilot.pause()
            typed = (time.perf_counter() - started) / len("user04321")
            assert [r.name for r in table.rows] == match
    return {
        "configurations": extra + 5,
        "open_s": opened,
        "configurations_screen_s": listed,
        "filter_s_median": statistics.median(at_once),
        "filter_s_max": max(at_once),
        "per_keystroke_s": typed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--configurations", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = asyncio.run(measure(args.configurations, args.repeats))
    # The same app with 5 configurations: what the pilot and Textual cost without the rows.
    result["reference"] = asyncio.run(measure(0, args.repeats))
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    reference = result["reference"]
    print(f"TUI with {result['configurations']} configurations, 160x48, headless")
    print(
        f"  open (first screen, workers done)   {result['open_s'] * 1000:7.0f} ms  target <= 1500"
    )
    print(
        f"  configurations screen listed        {result['configurations_screen_s'] * 1000:7.0f} ms"
    )
    print(
        f"  filter, query set at once (median)  {result['filter_s_median'] * 1000:7.0f} ms  target <= 100"
    )
    print(f"  filter, worst of the repeats        {result['filter_s_max'] * 1000:7.0f} ms")
    print(f"  filter, typed, per keystroke        {result['per_keystroke_s'] * 1000:7.0f} ms")
    print("with 5 configurations (the pilot's and Textual's own cost):")
    print(
        f"  open {reference['open_s'] * 1000:.0f} ms, configurations screen "
        f"{reference['configurations_screen_s'] * 1000:.0f} ms, filter "
        f"{reference['filter_s_median'] * 1000:.0f} ms, per keystroke "
        f"{reference['per_keystroke_s'] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
