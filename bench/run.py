"""The benchmark runner: ``python -m bench.run`` (the full run) or ``python -m bench.run --smoke``.

The full run pins the load client (this process) to one core and each
server to the other, starts a fresh server for every run, runs every
contestant of every scenario ``--rounds`` times interleaved (round by
round, rotating who goes first), and reports the median and range of each
figure with the server's CPU time per message.  Results go to
``bench/results/latest.json`` and the table into ``bench/README.md``.

The smoke mode runs every contestant and scenario once at a tiny size,
one server per contestant, and only checks that every message arrived.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import importlib.metadata
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench.contestants import CONTESTANTS, Contestant, node06_versions
from bench.procstat import loadavg
from bench.scenarios import SCENARIOS, BenchFailure, Scenario, Timing, run_scenario
from bench.serverproc import REPO, ServerError, ServerProcess

__all__ = ["Config", "execute", "main", "smoke_contestant"]

RESULTS = REPO / "bench" / "results" / "latest.json"
README = REPO / "bench" / "README.md"
README_START = "<!-- results:start (written by python -m bench.run) -->"
README_END = "<!-- results:end -->"

SMOKE_TIMING = Timing(warmup=0.02, duration=0.05, min_messages=3, timeout=15.0, window=4, settle=0.05)


@dataclass
class Config:
    smoke: bool = False
    rounds: int = 3
    timing: Timing = field(default_factory=Timing)
    contestants: list[str] = field(default_factory=lambda: list(CONTESTANTS))
    scenarios: list[str] = field(default_factory=lambda: list(SCENARIOS))
    #: Cores for the load client and the servers; ``None``: no pinning.
    client_cpu: int | None = 0
    server_cpu: int | None = 1


# -- running --------------------------------------------------------------------------------


def run_once(
    contestant: Contestant, scenario: Scenario, timing: Timing, smoke: bool, server: ServerProcess
) -> dict[str, Any]:
    """One run against a started server; never raises for a failed count check (``ok`` is False)."""
    record: dict[str, Any] = {"contestant": contestant.name, "scenario": scenario.name}
    try:
        record.update(asyncio.run(run_scenario(contestant, scenario, server.port, server.pid, timing, smoke)))
        record["ok"] = True
    except BenchFailure as exc:
        record["ok"] = False
        record["error"] = str(exc)
    if not server.alive():
        record["ok"] = False
        record["error"] = f"{record.get('error', '')} (the server died)\n{server.log_tail()}".strip()
    return record


def plan(config: Config) -> Iterator[tuple[int, Scenario, Contestant]]:
    """Every contestant of every scenario, round after round; who goes first rotates."""
    for round_number in range(config.rounds):
        for scenario_name in config.scenarios:
            scenario = SCENARIOS[scenario_name]
            entrants = [
                CONTESTANTS[name]
                for name in config.contestants
                if CONTESTANTS[name].transport in scenario.transports and CONTESTANTS[name].unavailable() is None
            ]
            if not entrants:
                continue
            turn = round_number % len(entrants)
            for contestant in entrants[turn:] + entrants[:turn]:
                yield round_number, scenario, contestant


def smoke_contestant(
    contestant: Contestant, scenarios: list[str] | None = None, timing: Timing = SMOKE_TIMING
) -> list[dict[str, Any]]:
    """Every scenario of ``contestant`` at the smoke size, on one server; the run records."""
    records = []
    with ServerProcess(contestant) as server:
        for name in scenarios or list(SCENARIOS):
            scenario = SCENARIOS[name]
            if contestant.transport in scenario.transports:
                records.append(run_once(contestant, scenario, timing, True, server))
    return records


def _describe(record: dict[str, Any]) -> str:
    if not record["ok"]:
        return "FAILED: " + str(record["error"]).splitlines()[0]
    if "rss_per_connection" in record:
        return (
            f"{record['rss_per_connection'] / 1024:8.1f} KiB/conn  {record['connect_rate']:7.0f} conn/s"
            f"  server {record['server_cpu_us_per_connect']:6.0f} µs/connect"
        )
    return (
        f"{record['rate']:9,.0f}/s  server {record['server_cpu_us_per_message']:6.1f} µs/msg"
        f" (core {record['server_cpu_util']:4.0%})  client core {record['client_cpu_util']:4.0%}"
    )


def execute(config: Config, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the plan and return the report (meta, runs, summary, comparisons)."""
    skipped = {name: reason for name in config.contestants if (reason := CONTESTANTS[name].unavailable()) is not None}
    for name, reason in skipped.items():
        progress(f"skipping {name}: {reason}")
    if config.client_cpu is not None:
        os.sched_setaffinity(0, {config.client_cpu})
    meta = machine(config)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    if config.smoke:
        for name in config.contestants:
            if name not in skipped:
                for record in smoke_contestant(CONTESTANTS[name], config.scenarios, config.timing):
                    record["round"] = 0
                    runs.append(record)
                    progress(f"{record['scenario']:16} {name:17} {_describe(record)}")
    else:
        steps = list(plan(config))
        for index, (round_number, scenario, contestant) in enumerate(steps, 1):
            try:
                with ServerProcess(contestant, cpu=config.server_cpu) as server:
                    record = run_once(contestant, scenario, config.timing, False, server)
            except ServerError as exc:
                record = {"contestant": contestant.name, "scenario": scenario.name, "ok": False, "error": str(exc)}
            record["round"] = round_number
            runs.append(record)
            progress(
                f"[{index:3}/{len(steps)}] round {round_number + 1}  {scenario.name:16} {contestant.name:17}"
                f" {_describe(record)}"
            )
    meta["elapsed_s"] = round(time.monotonic() - started, 1)
    meta["loadavg_end"] = loadavg()
    summary = summarize(runs)
    return {
        "meta": meta,
        "config": {**asdict(config), "timing": asdict(config.timing)},
        "skipped": skipped,
        "summary": summary,
        "comparisons": compare(summary),
        "runs": runs,
    }


# -- what the machine is --------------------------------------------------------------------


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "describe", "--always", "--dirty"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def machine_facts() -> dict[str, Any]:
    """When and on what a run happened: what every bench result file records first."""
    return {
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "tornado": _version("tornado"),
        "tornad_io": _version("SocketTornad.IO"),
    }


def machine(config: Config) -> dict[str, Any]:
    return {
        **machine_facts(),
        "python-socketio": _version("python-socketio"),
        "python-engineio": _version("python-engineio"),
        **dict(zip(("node", "node_socket.io"), node06_versions(), strict=True)),
        "git": _git_commit(),
        "pinning": (
            f"client on core {config.client_cpu}, servers on core {config.server_cpu}"
            if config.client_cpu is not None
            else "none"
        ),
        "loadavg_start": loadavg(),
    }


# -- summary and comparisons ----------------------------------------------------------------


def _spread(values: list[float]) -> dict[str, float] | None:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per scenario and contestant: median and range of each figure over the runs that passed."""
    summary: dict[str, dict[str, Any]] = {}
    for record in runs:
        cell = summary.setdefault(record["scenario"], {}).setdefault(
            record["contestant"], {"runs": 0, "failed": 0, "errors": [], "_ok": []}
        )
        cell["runs"] += 1
        if record["ok"]:
            cell["_ok"].append(record)
        else:
            cell["failed"] += 1
            cell["errors"].append(record["error"])
    for cells in summary.values():
        for cell in cells.values():
            good = cell.pop("_ok")
            if good and "rss_per_connection" in good[0]:
                cell["rss_per_connection"] = _spread([r["rss_per_connection"] for r in good])
                cell["connect_rate"] = _spread([r["connect_rate"] for r in good])
                cell["server_cpu_us_per_connect"] = _spread([r["server_cpu_us_per_connect"] for r in good])
            elif good:
                cell["rate"] = _spread([r["rate"] for r in good])
                cell["server_cpu_us_per_message"] = _spread([r["server_cpu_us_per_message"] for r in good])
                cell["server_cpu_util"] = _spread([r["server_cpu_util"] for r in good])
                cell["client_cpu_util"] = _spread([r["client_cpu_util"] for r in good])
    return summary


@dataclass(frozen=True)
class Target:
    subject: str
    reference: str
    scenarios: tuple[str, ...]
    #: "rate" (higher is better), "rss_per_connection" or "connect_rate".
    figure: str
    #: subject ÷ reference must be at least this (rates) or at most this (memory).
    bound: float
    label: str


ECHO = tuple(name for name, s in SCENARIOS.items() if s.kind == "echo")
ECHO_LOADED = tuple(name for name in ECHO if "-c1-" not in name)
WS_CONTESTS = ECHO + ("broadcast-r100",)
TARGETS = (
    Target("tornad_io-ws", "tornado-ws", ECHO_LOADED, "rate", 0.85, "websocket echo ≥ 0.85× bare Tornado"),
    Target("tornad_io-xhr", "tornado-longpoll", ECHO, "rate", 0.80, "xhr-polling echo ≥ 0.8× bare long-poll"),
    Target("tornad_io-ws", "tornado-ws", ("broadcast-r100",), "rate", 0.75, "broadcast ≥ 0.75× bare fan-out"),
    Target("tornad_io-ws", "tornado-ws", ("idle-c1000",), "rss_per_connection", 1.4, "idle RSS ≤ 1.4× bare Tornado"),
    Target("tornad_io-ws", "sio-ws", WS_CONTESTS, "rate", 1.0, "websocket ahead of python-socketio"),
    Target("tornad_io-xhr", "sio-poll", ECHO, "rate", 1.0, "xhr-polling ahead of python-socketio polling"),
    Target("tornad_io-ws", "sio-ws", ("idle-c1000",), "rss_per_connection", 1.0, "idle RSS below python-socketio"),
    Target("tornad_io-ws", "sio-ws", ("idle-c1000",), "connect_rate", 1.0, "connect rate above python-socketio"),
)


def compare(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target on each of its scenarios: the ratio of medians, and whether it is met.

    For message rates the ratio of server CPU per message (reference ÷
    subject) is given too: it is the fair figure when the load client, not
    the server, set the pace.
    """
    rows = []
    for target in TARGETS:
        for scenario in target.scenarios:
            cells = summary.get(scenario, {})
            subject, reference = cells.get(target.subject), cells.get(target.reference)
            row: dict[str, Any] = {
                "target": target.label,
                "scenario": scenario,
                "subject": target.subject,
                "reference": target.reference,
                "figure": target.figure,
                "bound": target.bound,
            }
            if (
                subject is None
                or reference is None
                or not subject.get(target.figure)
                or not reference.get(target.figure)
            ):
                row["status"] = "not measured"
            elif subject["failed"] or reference["failed"]:
                row["status"] = "count check failed"
            else:
                ratio = subject[target.figure]["median"] / reference[target.figure]["median"]
                row["ratio"] = ratio
                if target.figure == "rss_per_connection":
                    met = ratio <= target.bound if target.bound != 1.0 else ratio < 1.0
                elif target.bound == 1.0:
                    met = ratio > 1.0
                else:
                    met = ratio >= target.bound
                if target.figure == "rate":
                    row["cpu_ratio"] = (
                        reference["server_cpu_us_per_message"]["median"]
                        / subject["server_cpu_us_per_message"]["median"]
                    )
                row["status"] = "met" if met else "missed"
            rows.append(row)
    return rows


# -- the report as text ---------------------------------------------------------------------

SHORT = {
    "tornad_io-ws": "tornad_io",
    "tornado-ws": "bare Tornado",
    "sio-ws": "python-socketio",
    "tornad_io-xhr": "tornad_io",
    "tornado-longpoll": "bare Tornado",
    "sio-poll": "python-socketio",
    "node06-ws": "node 0.6.18",
    "node06-xhr": "node 0.6.18",
}


def _rate_cell(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return "–"
    if cell["failed"]:
        return f"**FAILED** ({cell['failed']}/{cell['runs']})"
    rate, cpu = cell["rate"], cell["server_cpu_us_per_message"]
    return f"{rate['median']:,.0f} ({rate['min']:,.0f}–{rate['max']:,.0f}) · {cpu['median']:.1f} µs"


def _ratio(report: dict[str, Any], subject: str, reference: str, scenario: str, figure: str = "rate") -> str:
    for row in report["comparisons"]:
        if (row["subject"], row["reference"], row["scenario"], row["figure"]) == (
            subject,
            reference,
            scenario,
            figure,
        ):
            if "ratio" not in row:
                return str(row["status"])
            mark = "✅" if row["status"] == "met" else "❌"
            cpu = f" (CPU {row['cpu_ratio']:.2f})" if "cpu_ratio" in row else ""
            return f"{row['ratio']:.2f}{cpu} {mark}"
    summary = report["summary"].get(scenario, {})
    a, b = summary.get(subject), summary.get(reference)
    if a and b and a.get(figure) and b.get(figure):
        ratio = a[figure]["median"] / b[figure]["median"]
        cpu = ""
        if figure == "rate":
            cpu = f" (CPU {b['server_cpu_us_per_message']['median'] / a['server_cpu_us_per_message']['median']:.2f})"
        return f"{ratio:.2f}{cpu}"
    return "–"


#: The columns of the results tables: tornad_io, then the others it is divided by.
WS_GROUP = ("tornad_io-ws", "tornado-ws", "sio-ws", "node06-ws")
POLL_GROUP = ("tornad_io-xhr", "tornado-longpoll", "sio-poll", "node06-xhr")
HEADER = (
    "| scenario | tornad_io | bare Tornado | python-socketio | node 0.6.18 "
    "| ÷ bare Tornado | ÷ python-socketio | ÷ node 0.6.18 |"
)
RULE = "|---|---|---|---|---|---|---|---|"


def render(report: dict[str, Any]) -> str:
    """The results as Markdown: machine, tables, targets."""
    meta, summary = report["meta"], report["summary"]
    rounds = report["config"]["rounds"]
    timing = report["config"]["timing"]
    out = [
        f"Run of {meta['date']} on {meta['cpu']} ({meta['cores']} cores, Linux {meta['kernel']}), "
        f"Python {meta['python']}, Tornado {meta['tornado']}, tornad_io {meta['tornad_io']} ({meta['git']}), "
        f"python-socketio {meta['python-socketio']} / python-engineio {meta['python-engineio']}, "
        f"node {meta.get('node')} / socket.io {meta.get('node_socket.io')}; "
        f"{meta['pinning']}; {rounds} rounds of {timing['duration']:g} s windows after {timing['warmup']:g} s "
        f"warm-ups; whole run {meta['elapsed_s']:.0f} s; load average {meta['loadavg_start'][0]:.2f} at the start, "
        f"{meta['loadavg_end'][0]:.2f} at the end.",
        "",
        "Each cell: median (min–max) of the runs · the server's CPU time per message, median. "
        "Ratios: tornad_io's median ÷ the other's, with the ratio of server CPU per message "
        "(other ÷ tornad_io) in parentheses; ✅/❌ mark a target met/missed (none is set against node 0.6.18).",
    ]
    if report["skipped"]:
        out += ["", "Not run: " + "; ".join(f"{k} ({v})" for k, v in report["skipped"].items())]
    for title, group in (
        ("WebSocket echo (node 0.6.18: draft-76), messages/s", WS_GROUP),
        (
            "xhr-polling echo (bare: Tornado long-poll; python-socketio: Engine.IO polling), messages/s",
            POLL_GROUP,
        ),
    ):
        out += ["", f"**{title}**", "", HEADER, RULE]
        for scenario in ECHO:
            cells = summary.get(scenario, {})
            out.append(
                f"| {SCENARIOS[scenario].describe()} | "
                + " | ".join(_rate_cell(cells.get(name)) for name in group)
                + " | "
                + " | ".join(_ratio(report, group[0], other, scenario) for other in group[1:])
                + " |"
            )
    cells = summary.get("broadcast-r100", {})
    out += [
        "",
        "**Broadcast over websocket, deliveries/s** (tornad_io: "
        + ("`Handler.broadcast`" if _has_broadcast() else "a loop of `send`")
        + "; bare Tornado: a loop of `write_message`; python-socketio: `send(skip_sid=sender)`;"
        " node 0.6.18: `client.broadcast`)",
        "",
        HEADER,
        RULE,
        f"| {SCENARIOS['broadcast-r100'].describe()} | "
        + " | ".join(_rate_cell(cells.get(name)) for name in WS_GROUP)
        + " | "
        + " | ".join(_ratio(report, WS_GROUP[0], other, "broadcast-r100") for other in WS_GROUP[1:])
        + " |",
    ]
    cells = summary.get("idle-c1000", {})

    def idle(name: str, figure: str, scale: float, unit: str) -> str:
        cell = cells.get(name)
        if cell is None:
            return "–"
        if cell["failed"]:
            return f"**FAILED** ({cell['failed']}/{cell['runs']})"
        value = cell[figure]
        return f"{value['median'] / scale:,.1f} ({value['min'] / scale:,.1f}–{value['max'] / scale:,.1f}) {unit}"

    out += [
        "",
        "**1,000 idle websocket connections**: server RSS growth per connection, and connections opened per second "
        "(50 at a time, each through its Socket.IO handshake)",
        "",
        HEADER.replace("| scenario |", "| figure |"),
        RULE,
        "| RSS per connection | "
        + " | ".join(idle(name, "rss_per_connection", 1024, "KiB") for name in WS_GROUP)
        + " | "
        + " | ".join(_ratio(report, WS_GROUP[0], other, "idle-c1000", "rss_per_connection") for other in WS_GROUP[1:])
        + " |",
        "| connect rate | "
        + " | ".join(idle(name, "connect_rate", 1, "/s") for name in WS_GROUP)
        + " | "
        + " | ".join(_ratio(report, WS_GROUP[0], other, "idle-c1000", "connect_rate") for other in WS_GROUP[1:])
        + " |",
    ]
    verdicts: dict[str, list[str]] = {}
    for row in report["comparisons"]:
        verdicts.setdefault(row["target"], []).append(row["status"])
    out += ["", "**Targets**", "", "| target | verdict |", "|---|---|"]
    for label, statuses in verdicts.items():
        met = statuses.count("met")
        if met == len(statuses):
            verdict = f"met ({met}/{len(statuses)})"
        else:
            missed = [
                row["scenario"] for row in report["comparisons"] if row["target"] == label and row["status"] != "met"
            ]
            verdict = f"**missed** in {len(missed)}/{len(statuses)}: " + ", ".join(missed)
        out.append(f"| {label} | {verdict} |")
    return "\n".join(out)


def _has_broadcast() -> bool:
    from tornad_io import SocketIOHandler

    return hasattr(SocketIOHandler, "broadcast")


def update_readme(table: str, readme: Path = README) -> bool:
    text = readme.read_text(encoding="utf-8")
    start, end = text.find(README_START), text.find(README_END)
    if start < 0 or end < start:
        return False
    readme.write_text(text[: start + len(README_START)] + "\n\n" + table + "\n\n" + text[end:], encoding="utf-8")
    return True


# -- command line ---------------------------------------------------------------------------


def _names(text: str, known: dict[str, Any], what: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in known]
    if unknown:
        raise SystemExit(f"unknown {what}: {', '.join(unknown)} (known: {', '.join(known)})")
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one run each: check counts, no timing")
    parser.add_argument("--rounds", type=int, default=3, help="runs of each contestant and scenario (default 3)")
    parser.add_argument("--duration", type=float, help="seconds in each measurement window (default 2)")
    parser.add_argument("--warmup", type=float, help="seconds of discarded warm-up per run (default 0.5)")
    parser.add_argument("--contestants", help=f"comma-separated subset of: {', '.join(CONTESTANTS)}")
    parser.add_argument("--scenarios", help=f"comma-separated subset of: {', '.join(SCENARIOS)}")
    parser.add_argument("--no-pin", action="store_true", help="do not pin client and servers to separate cores")
    parser.add_argument("--output", type=Path, help=f"where to write the JSON (default for a full run: {RESULTS})")
    parser.add_argument("--no-readme", action="store_true", help="do not write the table into bench/README.md")
    args = parser.parse_args(argv)

    config = Config(smoke=args.smoke, rounds=1 if args.smoke else args.rounds)
    config.timing = SMOKE_TIMING if args.smoke else Timing()
    if args.duration is not None:
        config.timing = replace(config.timing, duration=args.duration)
    if args.warmup is not None:
        config.timing = replace(config.timing, warmup=args.warmup)
    subset = bool(args.contestants or args.scenarios)
    if args.contestants:
        config.contestants = _names(args.contestants, CONTESTANTS, "contestants")
    if args.scenarios:
        config.scenarios = _names(args.scenarios, SCENARIOS, "scenarios")
    usable = os.sched_getaffinity(0)
    if args.no_pin or args.smoke or len(usable) < 2:
        config.client_cpu = config.server_cpu = None
    else:
        config.client_cpu, config.server_cpu = sorted(usable)[:2]

    report = execute(config, progress=lambda line: print(line, flush=True))
    table = render(report) if not args.smoke else ""
    if table:
        print("\n" + table)
    output = args.output or (None if (args.smoke or subset) else RESULTS)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"\nresults written to {output}")
    if table and not (subset or args.no_readme or args.smoke) and update_readme(table):
        print(f"table written to {README}")
    failed = [r for r in report["runs"] if not r["ok"]]
    for record in failed:
        print(f"FAILED {record['scenario']} {record['contestant']}: {record['error']}", file=sys.stderr)
    if args.smoke:
        print(f"smoke: {len(report['runs']) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
