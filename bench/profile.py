"""Where a server spends its time per message: ``python -m bench.profile``.

Runs one contestant and scenario (by default tornad_io's websocket and
xhr-polling echo with 10 connections) with the server sampled by py-spy,
then turns the share of samples in which each function is on the stack into
microseconds per message, using the server's CPU time per message measured
in the same run.  ``--profiler cprofile`` uses cProfile instead (exact call
counts per message, but its own overhead inflates every time it reports).

The tables go to stdout and, with ``--output``, to a Markdown file.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile  # noqa: F401  (checked to exist: the cprofile mode runs it in the server)
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from bench.contestants import CONTESTANTS, Contestant
from bench.scenarios import SCENARIOS, Scenario, Timing, run_scenario
from bench.serverproc import REPO, ServerProcess

__all__ = ["main"]

DEFAULT_TARGETS = ("tornad_io-ws:echo-c10-ascii", "tornad_io-xhr:echo-c10-ascii")


def _short(path: str) -> str:
    for marker in ("site-packages/", "/lib/python3."):
        if marker in path:
            tail = path.split(marker, 1)[1]
            return tail.split("/", 1)[1] if marker.startswith("/lib") and "/" in tail else tail
    try:
        return str(Path(path).resolve().relative_to(REPO))
    except ValueError:
        return path


def _frame_key(frame: str) -> tuple[str, str]:
    """``("function", "file")`` from a py-spy frame ``function (file)`` or ``function (file:line)``."""
    name, _, where = frame.rpartition(" (")
    where = where.rstrip(")")
    if ":" in where and where.rsplit(":", 1)[1].isdigit():
        where = where.rsplit(":", 1)[0]
    return (name or frame), _short(where)


def read_raw(path: Path) -> tuple[Counter[tuple[str, str]], Counter[tuple[str, str]], Counter[str], int]:
    """Inclusive and self sample counts per function, self counts per file, and the total."""
    inclusive: Counter[tuple[str, str]] = Counter()
    own: Counter[tuple[str, str]] = Counter()
    per_file: Counter[str] = Counter()
    total = 0
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_key(f) for f in stack.split(";") if f and not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        total += count
        for key in set(frames):
            inclusive[key] += count
        own[frames[-1]] += count
        per_file[frames[-1][1]] += count
    return inclusive, own, per_file, total


def _table(rows: Iterable[tuple[str, str, float, float]], headers: tuple[str, str, str, str]) -> list[str]:
    out = [f"| {' | '.join(headers)} |", "|---|---|---:|---:|"]
    out += [f"| `{name}` | {where} | {us:.1f} | {share:.1%} |" for name, where, us, share in rows]
    return out


async def _load(contestant: Contestant, scenario: Scenario, server: ServerProcess, timing: Timing) -> dict[str, Any]:
    return await run_scenario(contestant, scenario, server.port, server.pid, timing)


def profile_pyspy(
    contestant: Contestant,
    scenario: Scenario,
    timing: Timing,
    cpus: tuple[int, int] | None,
    rate: int,
    top: int,
    keep: Path | None = None,
) -> list[str]:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.path.exists(spy):
        raise SystemExit("py-spy is not installed: make bench-setup (or use --profiler cprofile)")
    with (
        tempfile.TemporaryDirectory() as tmp,
        ServerProcess(contestant, cpu=cpus[1] if cpus else None, args=scenario.arguments(False)) as server,
    ):
        raw = Path(tmp) / "samples.txt"
        # py-spy samples during the warm-up and the window, and stops before the load does.
        seconds = max(1, int(timing.warmup + timing.duration - 0.5))
        spy_proc = subprocess.Popen(
            [
                spy,
                "record",
                "--pid",
                str(server.pid),
                "--rate",
                str(rate),
                "--duration",
                str(seconds),
                "--format",
                "raw",
                "--nolineno",
                "--output",
                str(raw),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        result = asyncio.run(_load(contestant, scenario, server, timing))
        _, errors = spy_proc.communicate(timeout=60)
        if not raw.exists():
            raise SystemExit(f"py-spy recorded nothing: {errors.decode(errors='replace')[-2000:]}")
        inclusive, own, per_file, total = read_raw(raw)
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            shutil.copy(raw, keep / f"{contestant.name}-{scenario.name}.txt")
    per_message = result["server_cpu_us_per_message"]
    scale = per_message / total if total else 0.0
    lines = [
        f"### {contestant.label}, {scenario.describe()}",
        "",
        f"{result['rate']:,.0f} messages/s; server CPU {per_message:.1f} µs per message "
        f"(core {result['server_cpu_util']:.0%} busy); py-spy, {total:,} samples at {rate}/s of the busy server. "
        "µs/message = share of samples × CPU per message.",
        "",
        "tornad_io's functions, inclusive (the function and everything it called, Tornado's writes included):",
        "",
        *_table(
            (
                (name, where, count * scale, count / total)
                for (name, where), count in inclusive.most_common()
                if where.startswith("tornad_io/")
            ),
            ("function", "file", "µs/message", "share"),
        ),
        "",
        "All functions, inclusive (the event loop's own frames, on every sample, left out):",
        "",
        *_table(
            (
                (name, where, count * scale, count / total)
                for (name, where), count in [item for item in inclusive.most_common() if item[1] < 0.99 * total][:top]
            ),
            ("function", "file", "µs/message", "share"),
        ),
        "",
        "Self (the function's own code, C calls it makes included):",
        "",
        *_table(
            ((name, where, count * scale, count / total) for (name, where), count in own.most_common(top)),
            ("function", "file", "µs/message", "share"),
        ),
        "",
        "Self time by file:",
        "",
        "| file | µs/message | share |",
        "|---|---:|---:|",
        *(f"| {where} | {count * scale:.1f} | {count / total:.1%} |" for where, count in per_file.most_common(top)),
    ]
    return lines


def profile_cprofile(
    contestant: Contestant, scenario: Scenario, timing: Timing, cpus: tuple[int, int] | None, top: int
) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        stats_file = Path(tmp) / "server.prof"
        server = ServerProcess(
            contestant,
            cpu=cpus[1] if cpus else None,
            launcher=["-m", "cProfile", "-o", str(stats_file)],
            args=scenario.arguments(False),
        )
        with server:
            result = asyncio.run(_load(contestant, scenario, server, timing))
        if not stats_file.exists():
            raise SystemExit(f"cProfile wrote no statistics:\n{server.log_tail()}")
        stats = pstats.Stats(str(stats_file))
    messages = result["messages_checked"]
    entries = stats.stats  # type: ignore[attr-defined]
    rows = []
    for (path, _line, name), (_cc, calls, own, cumulative, _callers) in entries.items():
        rows.append((name, _short(path), cumulative / messages * 1e6, own / messages * 1e6, calls / messages))
    measured = result.get("server_cpu_us_per_message")
    window = f"{measured:.1f} µs/message" if measured is not None else "no per-message figure"
    lines = [
        f"### {contestant.label}, {scenario.describe()} (cProfile)",
        "",
        f"{messages:,} messages in the whole run (warm-up and window); the profiler's own overhead inflates "
        f"every figure (the unprofiled window measured {window} under the profiler).",
        "",
        "| function | file | cumulative µs/message | own µs/message | calls/message |",
        "|---|---|---:|---:|---:|",
    ]
    rows.sort(key=lambda row: row[2], reverse=True)
    lines += [f"| `{n}` | {w} | {c:.1f} | {o:.1f} | {k:.2f} |" for n, w, c, o, k in rows[:top]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "targets", nargs="*", default=list(DEFAULT_TARGETS), help="contestant:scenario pairs (default: %(default)s)"
    )
    parser.add_argument("--profiler", choices=("py-spy", "cprofile"), default="py-spy")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of measured load (default 8)")
    parser.add_argument("--rate", type=int, default=1000, help="py-spy samples per second (default 1000)")
    parser.add_argument("--top", type=int, default=25, help="rows per table (default 25)")
    parser.add_argument("--output", type=Path, help="also write the tables to this Markdown file")
    parser.add_argument("--keep-samples", type=Path, metavar="DIR", help="keep py-spy's raw samples in DIR")
    args = parser.parse_args(argv)
    usable = sorted(os.sched_getaffinity(0))
    cpus = (usable[0], usable[1]) if len(usable) >= 2 else None
    if cpus:
        os.sched_setaffinity(0, {cpus[0]})
    timing = replace(Timing(), warmup=1.5, duration=args.duration)
    out: list[str] = []
    for target in args.targets:
        name, _, scenario_name = target.partition(":")
        if name not in CONTESTANTS or scenario_name not in SCENARIOS:
            raise SystemExit(f"unknown contestant:scenario {target!r}")
        contestant, scenario = CONTESTANTS[name], SCENARIOS[scenario_name]
        if contestant.command:
            raise SystemExit(f"{name} is not a Python server: py-spy and cProfile cannot profile it")
        if args.profiler == "py-spy":
            lines = profile_pyspy(contestant, scenario, timing, cpus, args.rate, args.top, args.keep_samples)
        else:
            lines = profile_cprofile(contestant, scenario, timing, cpus, args.top)
        print("\n".join(lines) + "\n", flush=True)
        out += [*lines, ""]
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text("\n".join(out), encoding="utf-8")
        print(f"written to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
