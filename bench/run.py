"""The benchmark runner: ``python -m bench.run`` (the full run) or ``python -m bench.run --smoke``.

The full run pins the load client (this process) to one core and each
server to the other, starts a fresh server for every run, runs every
contestant of every scenario ``--rounds`` times interleaved (round by
round, rotating who goes first), and reports the median and range of each
figure with the server's CPU time per message; then the paired A/B echo
(:mod:`bench.paired`), once per round.  Results go to
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
from bench.paired import PAIRED_SCENARIOS, PAIRS, paired_name, run_paired
from bench.procstat import loadavg
from bench.scenarios import (
    DEFAULT_HEARTBEAT_INTERVAL,
    HEARTBEAT_SETTLE,
    HEARTBEAT_WINDOW,
    SCENARIOS,
    BenchFailure,
    Scenario,
    Timing,
    enters,
    run_scenario,
)
from bench.serverproc import REPO, ServerError, ServerProcess, raise_fd_limit

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
    #: Whether the paired A/B echo measurements (:mod:`bench.paired`) follow the rounds, once per round.
    paired: bool = True


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
                if enters(CONTESTANTS[name], scenario) and CONTESTANTS[name].unavailable() is None
            ]
            if not entrants:
                continue
            turn = round_number % len(entrants)
            for contestant in entrants[turn:] + entrants[:turn]:
                yield round_number, scenario, contestant


def paired_plan(config: Config) -> Iterator[tuple[int, str, str, str]]:
    """(round, scenario, subject, reference) of every paired measurement whose two contestants both run."""
    if not config.paired:
        return
    for round_number in range(config.rounds):
        for scenario_name in PAIRED_SCENARIOS:
            if scenario_name not in config.scenarios:
                continue
            for subject, reference in PAIRS:
                names = (subject, reference)
                if all(name in config.contestants and CONTESTANTS[name].unavailable() is None for name in names):
                    yield round_number, scenario_name, subject, reference


def smoke_contestant(
    contestant: Contestant, scenarios: list[str] | None = None, timing: Timing = SMOKE_TIMING
) -> list[dict[str, Any]]:
    """Every scenario of ``contestant`` at the smoke size; the run records.

    One server runs every scenario that asks nothing of its command line;
    each other set of server options (``--listen default``, the heartbeat
    interval) gets a server of its own.
    """
    raise_fd_limit()
    groups: dict[tuple[str, ...], list[Scenario]] = {}
    for name in scenarios or list(SCENARIOS):
        scenario = SCENARIOS[name]
        if enters(contestant, scenario):
            groups.setdefault(scenario.arguments(smoke=True), []).append(scenario)
    records = []
    for args, group in groups.items():
        with ServerProcess(contestant, args=args) as server:
            for scenario in group:
                records.append(run_once(contestant, scenario, timing, True, server))
    return records


def _describe(record: dict[str, Any]) -> str:
    if not record["ok"]:
        return "FAILED: " + str(record["error"]).splitlines()[0]
    if "paired_rate_ratio" in record:
        return (
            f"rate ratio {record['paired_rate_ratio']:.2f}, CPU ratio {record['paired_cpu_ratio']:.2f}"
            f" (slices {record['paired_slice_ratio_min']:.2f}–{record['paired_slice_ratio_max']:.2f});"
            f" {record['subject_cpu_us_per_message']:.1f} vs {record['reference_cpu_us_per_message']:.1f} µs/msg"
        )
    if "cpu_percent" in record:
        return (
            f"{record['cpu_percent']:6.2f} % of a core  {record['rss_per_connection'] / 1024:6.1f} KiB/conn"
            f"  {record['heartbeats_in_window']:,} heartbeats (≥ {record['heartbeats_min_per_connection']} each)"
            f" {record['server_cpu_us_per_heartbeat']:5.0f} µs each"
        )
    if "listen_drops" in record:
        return (
            f"{record['connect_rate']:7,.0f} conn/s  ListenOverflows +{record['listen_overflows']}"
            f"  ListenDrops +{record['listen_drops']}  slowest {record['slowest_connect_ms']:,.0f} ms"
            f"  server {record['server_cpu_us_per_connect']:5.0f} µs/connect"
        )
    if "rss_per_connection" in record:
        return (
            f"{record['rss_per_connection'] / 1024:8.1f} KiB/conn  {record['connect_rate']:7.0f} conn/s"
            f"  server {record['server_cpu_us_per_connect']:6.0f} µs/connect"
        )
    longest = (
        f"  longest call {record['broadcast_max_ms']:.1f} ms, CPU {record['broadcast_max_cpu_ms']:.1f} ms"
        f" ({record['broadcast_max_cpu_ms_per_1000']:.2f}/1,000)"
        if "broadcast_max_ms" in record
        else ""
    )
    return (
        f"{record['rate']:9,.0f}/s  server {record['server_cpu_us_per_message']:6.1f} µs/msg"
        f" (core {record['server_cpu_util']:4.0%})  client core {record['client_cpu_util']:4.0%}{longest}"
    )


def execute(config: Config, progress: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the plan and return the report (meta, runs, summary, comparisons)."""
    skipped = {name: reason for name in config.contestants if (reason := CONTESTANTS[name].unavailable()) is not None}
    for name, reason in skipped.items():
        progress(f"skipping {name}: {reason}")
    if config.client_cpu is not None:
        os.sched_setaffinity(0, {config.client_cpu})
    raise_fd_limit()  # the load client holds up to 10,000 connections
    meta = machine(config)
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    if config.smoke:
        for name in config.contestants:
            if name not in skipped:
                for record in smoke_contestant(CONTESTANTS[name], config.scenarios, config.timing):
                    record["round"] = 0
                    runs.append(record)
                    progress(f"{record['scenario']:16} {name:23} {_describe(record)}")
    else:
        steps = list(plan(config))
        for index, (round_number, scenario, contestant) in enumerate(steps, 1):
            try:
                with ServerProcess(contestant, cpu=config.server_cpu, args=scenario.arguments(False)) as server:
                    record = run_once(contestant, scenario, config.timing, False, server)
            except ServerError as exc:
                record = {"contestant": contestant.name, "scenario": scenario.name, "ok": False, "error": str(exc)}
            record["round"] = round_number
            runs.append(record)
            progress(
                f"[{index:3}/{len(steps)}] round {round_number + 1}  {scenario.name:16} {contestant.name:23}"
                f" {_describe(record)}"
            )
        pairs = list(paired_plan(config))
        for index, (round_number, scenario_name, subject, reference) in enumerate(pairs, 1):
            record = run_paired(subject, reference, scenario_name, config.timing, config.server_cpu)
            record["round"] = round_number
            runs.append(record)
            progress(
                f"[{index:3}/{len(pairs)}] paired, round {round_number + 1}  {scenario_name:16} "
                f"{record['contestant']:31} {_describe(record)}"
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
        "uvloop": _version("uvloop"),
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
            for figure in FIGURES:
                values = [r[figure] for r in good if r.get(figure) is not None]
                if values and len(values) == len(good) and (spread := _spread(values)) is not None:
                    cell[figure] = spread
    return summary


#: The figures a run record may have that the summary gives median and range of.
FIGURES = (
    "rate",
    "server_cpu_us_per_message",
    "server_cpu_util",
    "client_cpu_util",
    "broadcast_max_ms",
    "broadcast_max_ms_per_1000",
    "broadcast_max_cpu_ms",
    "broadcast_max_cpu_ms_per_1000",
    "broadcast_calls",
    "rss_per_connection",
    "connect_rate",
    "server_cpu_us_per_connect",
    "cpu_percent",
    "server_cpu_us_per_heartbeat",
    "heartbeats_min_per_connection",
    "heartbeat_gap_s",
    "listen_overflows",
    "listen_drops",
    "syncookies_sent",
    "retransmitted_segments",
    "slowest_connect_ms",
    "p99_connect_ms",
    "paired_rate_ratio",
    "paired_cpu_ratio",
    "paired_slice_ratio",
    "paired_slice_ratio_min",
    "paired_slice_ratio_max",
    "subject_cpu_us_per_message",
    "reference_cpu_us_per_message",
)


@dataclass(frozen=True)
class Target:
    subject: str
    #: The contestant divided by; ``None``: the subject's own figure is judged against ``bound``.
    reference: str | None
    scenarios: tuple[str, ...]
    #: A figure of the summary: "rate", "server_cpu_us_per_message", "rss_per_connection", "connect_rate",
    #: "broadcast_max_ms_per_1000", "cpu_percent", "listen_drops".
    figure: str
    #: What subject ÷ reference (or the subject's figure, without a reference) is held to.
    bound: float
    label: str
    #: Whether a larger figure is the better one (rates) or a smaller one (CPU, memory, time, drops).
    higher_is_better: bool = True
    #: Whether the bound itself misses (strictly ahead / below).
    strict: bool = False
    #: Which value of the runs is judged: "median", or "max" (every run must meet the bound).
    statistic: str = "median"

    def met(self, value: float) -> bool:
        if self.higher_is_better:
            return value > self.bound if self.strict else value >= self.bound
        return value < self.bound if self.strict else value <= self.bound

    @property
    def bound_text(self) -> str:
        sign = (">" if self.strict else "≥") if self.higher_is_better else ("<" if self.strict else "≤")
        return f"{sign} {self.bound:g}" + ("×" if self.reference is not None else "")


ECHO = tuple(name for name, s in SCENARIOS.items() if s.kind == "echo")
BROADCAST = tuple(name for name, s in SCENARIOS.items() if s.kind == "broadcast")
WS_CONTESTS = ECHO + ("broadcast-r100",)
TARGETS = (
    # The two echo targets against bare Tornado: judged on the paired A/B measurement (bench/paired.py says why).
    Target(
        paired_name("tornad_io-ws", "tornado-ws"),
        None,
        PAIRED_SCENARIOS,
        "paired_rate_ratio",
        1.8,
        "websocket echo ≥ 1.8× bare Tornado (paired A/B)",
    ),
    Target(
        paired_name("tornad_io-xhr", "tornado-longpoll"),
        None,
        PAIRED_SCENARIOS,
        "paired_rate_ratio",
        1.4,
        "xhr-polling echo ≥ 1.4× bare long-poll (paired A/B)",
    ),
    Target(
        "tornad_io-ws",
        "tornado-ws",
        BROADCAST,
        "server_cpu_us_per_message",
        0.25,
        "broadcast server CPU per delivery ≤ 0.25× bare Tornado's",
        higher_is_better=False,
    ),
    Target(
        "tornad_io-ws",
        None,
        ("broadcast-r5000",),
        "broadcast_max_cpu_ms_per_1000",
        5.0,
        "longest broadcast call ≤ 5 ms of CPU per 1,000 receivers",
        higher_is_better=False,
    ),
    Target(
        "tornad_io-ws",
        "tornado-ws",
        ("idle-c1000",),
        "rss_per_connection",
        1.0,
        "idle RSS per websocket ≤ 1.0× bare Tornado",
        higher_is_better=False,
    ),
    Target(
        "tornad_io-ws",
        None,
        ("idle-c10000-cpu",),
        "cpu_percent",
        5.0,
        "10,000 idle websockets, heartbeats answered: < 5 % of a core",
        higher_is_better=False,
        strict=True,
    ),
    Target(
        "tornad_io-ws",
        None,
        ("connect-c10000",),
        "listen_drops",
        0,
        "10,000 connects through SocketIOServer: 0 SYN drops",
        higher_is_better=False,
        statistic="max",
    ),
    Target("tornad_io-ws", "sio-ws", WS_CONTESTS, "rate", 1.0, "websocket ahead of python-socketio", strict=True),
    Target("tornad_io-xhr", "sio-poll", ECHO, "rate", 1.0, "xhr-polling ahead of python-socketio polling", strict=True),
    Target(
        "tornad_io-v5-ws",
        "sio-ws",
        ECHO + BROADCAST,
        "rate",
        2.0,
        "tornad_io v5 ≥ 2× python-socketio on websocket echo and broadcast",
    ),
    Target(
        "tornad_io-ws",
        "sio-ws",
        ("idle-c1000",),
        "rss_per_connection",
        1.0,
        "idle RSS below python-socketio",
        higher_is_better=False,
        strict=True,
    ),
    Target(
        "tornad_io-ws",
        "sio-ws",
        ("idle-c1000",),
        "connect_rate",
        1.0,
        "connect rate above python-socketio",
        strict=True,
    ),
)


def compare(summary: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Each target on each of its scenarios: the ratio of medians (or the figure itself), and whether it is met.

    For message rates, and for server CPU per message, the ratio of the
    other figure is given too (``cpu_ratio``: server CPU per message,
    reference ÷ subject; ``rate_ratio``: subject ÷ reference): the CPU ratio
    is the fair figure when the load client, not the server, set the pace.
    """
    rows = []
    for target in TARGETS:
        for scenario in target.scenarios:
            cells = summary.get(scenario, {})
            subject = cells.get(target.subject)
            reference = cells.get(target.reference) if target.reference is not None else None
            row: dict[str, Any] = {
                "target": target.label,
                "scenario": scenario,
                "subject": target.subject,
                "reference": target.reference,
                "figure": target.figure,
                "bound": target.bound,
                "statistic": target.statistic,
            }
            if subject is None or (target.reference is not None and reference is None):
                row["status"] = "not measured"
            elif subject["failed"] or (reference is not None and reference["failed"]):
                row["status"] = "count check failed"
            elif target.figure not in subject or (reference is not None and target.figure not in reference):
                row["status"] = "not measured"
            elif reference is None:
                value = subject[target.figure][target.statistic]
                row["value"] = value
                row["status"] = "met" if target.met(value) else "missed"
            else:
                ratio = subject[target.figure][target.statistic] / reference[target.figure][target.statistic]
                row["ratio"] = ratio
                if "server_cpu_us_per_message" in subject and "server_cpu_us_per_message" in reference:
                    row["cpu_ratio"] = (
                        reference["server_cpu_us_per_message"]["median"]
                        / subject["server_cpu_us_per_message"]["median"]
                    )
                if target.figure == "server_cpu_us_per_message" and "rate" in subject and "rate" in reference:
                    row["rate_ratio"] = subject["rate"]["median"] / reference["rate"]["median"]
                row["status"] = "met" if target.met(ratio) else "missed"
            rows.append(row)
    return rows


# -- the report as text ---------------------------------------------------------------------

SHORT = {
    "tornad_io-ws": "tornad_io",
    "tornado-ws": "bare Tornado",
    "sio-ws": "python-socketio",
    "tornad_io-xhr": "tornad_io",
    "tornad_io-v5-ws": "tornad_io v5",
    "tornad_io-v5-poll": "tornad_io v5",
    "tornado-longpoll": "bare Tornado",
    "sio-poll": "python-socketio",
    "node06-ws": "node 0.6.18",
    "node06-xhr": "node 0.6.18",
    "tornad_io-ws-uvloop": "tornad_io on uvloop",
    "tornado-ws-uvloop": "bare Tornado on uvloop",
    "tornad_io-xhr-uvloop": "tornad_io on uvloop",
    "tornado-longpoll-uvloop": "bare Tornado on uvloop",
}


def _failed(cell: dict[str, Any] | None) -> str | None:
    if cell is None:
        return "–"
    if cell["failed"]:
        return f"**FAILED** ({cell['failed']}/{cell['runs']})"
    return None


def _rate_cell(cell: dict[str, Any] | None) -> str:
    if (text := _failed(cell)) is not None:
        return text
    assert cell is not None
    rate, cpu = cell["rate"], cell["server_cpu_us_per_message"]
    return f"{rate['median']:,.0f} ({rate['min']:,.0f}–{rate['max']:,.0f}) · {cpu['median']:.1f} µs"


def _figure_cell(cell: dict[str, Any] | None, figure: str, digits: int = 1, scale: float = 1, unit: str = "") -> str:
    """Median (min–max) of one figure, or "–" when the contestant did not run or does not have it."""
    if (text := _failed(cell)) is not None:
        return text
    assert cell is not None
    value = cell.get(figure)
    if value is None:
        return "–"
    low, mid, high = (f"{value[k] / scale:,.{digits}f}" for k in ("min", "median", "max"))
    return f"{mid} ({low}–{high}){' ' + unit if unit else ''}"


def _wall_note(cell: dict[str, Any] | None) -> str:
    """The median longest wall time per 1,000 receivers, in parentheses, when the cell has it."""
    value = (cell or {}).get("broadcast_max_ms_per_1000")
    return f" (wall {value['median']:,.2f})" if value and _failed(cell) is None else ""


def _row(report: dict[str, Any], subject: str, reference: str | None, scenario: str, figure: str) -> dict[str, Any]:
    for row in report["comparisons"]:
        if (row["subject"], row["reference"], row["scenario"], row["figure"]) == (
            subject,
            reference,
            scenario,
            figure,
        ):
            return dict(row)
    return {}


def _mark(row: dict[str, Any]) -> str:
    return {"met": " ✅", "missed": " ❌"}.get(row.get("status", ""), "")


def _ratio(report: dict[str, Any], subject: str, reference: str, scenario: str, figure: str = "rate") -> str:
    """subject ÷ reference of ``figure`` (medians), marked when a target judges it; for rates, the CPU ratio too."""
    row = _row(report, subject, reference, scenario, figure)
    if row and "ratio" not in row:
        return str(row["status"])
    summary = report["summary"].get(scenario, {})
    a, b = summary.get(subject), summary.get(reference)
    if not row:
        if not (a and b and a.get(figure) and b.get(figure)):
            return "–"
        row = {"ratio": a[figure]["median"] / b[figure]["median"]}
        if figure == "rate" and a["server_cpu_us_per_message"]["median"]:  # a smoke run can measure 0 ticks
            row["cpu_ratio"] = b["server_cpu_us_per_message"]["median"] / a["server_cpu_us_per_message"]["median"]
    cpu = f" (CPU {row['cpu_ratio']:.2f})" if figure == "rate" and "cpu_ratio" in row else ""
    return f"{row['ratio']:.2f}{cpu}{_mark(row)}"


def _broadcast_ratio(report: dict[str, Any], reference: str, scenario: str) -> str:
    """For broadcast: the rate ratio and tornad_io's CPU per delivery ÷ the other's, each marked when judged."""
    subject = "tornad_io-ws"
    cells = report["summary"].get(scenario, {})
    a, b = cells.get(subject), cells.get(reference)
    if not (a and b and a.get("rate") and b.get("rate")):
        rows = [_row(report, subject, reference, scenario, f) for f in ("rate", "server_cpu_us_per_message")]
        return next((str(r["status"]) for r in rows if r), "–")
    rate = a["rate"]["median"] / b["rate"]["median"]
    cpu = a["server_cpu_us_per_message"]["median"] / (b["server_cpu_us_per_message"]["median"] or float("nan"))
    rate_mark = _mark(_row(report, subject, reference, scenario, "rate"))
    cpu_mark = _mark(_row(report, subject, reference, scenario, "server_cpu_us_per_message"))
    return f"rate {rate:.2f}{rate_mark} · CPU {cpu:.2f}×{cpu_mark}"


#: The columns of the results tables: tornad_io, then the others it is divided by.
WS_GROUP = ("tornad_io-ws", "tornado-ws", "sio-ws", "node06-ws")
POLL_GROUP = ("tornad_io-xhr", "tornado-longpoll", "sio-poll", "node06-xhr")
#: The Socket.IO v5 table, per transport: tornad_io's v5 contestant, python-socketio's, tornad_io's 0.6 one.
V5_GROUPS = (("tornad_io-v5-ws", "sio-ws", "tornad_io-ws"), ("tornad_io-v5-poll", "sio-poll", "tornad_io-xhr"))
HEADER = (
    "| scenario | tornad_io | bare Tornado | python-socketio | node 0.6.18 "
    "| ÷ bare Tornado | ÷ python-socketio | ÷ node 0.6.18 |"
)
RULE = "|---|---|---|---|---|---|---|---|"


def _paired_cell(report: dict[str, Any], name: str, scenario: str) -> str:
    cell = report["summary"].get(scenario, {}).get(name)
    if (text := _failed(cell)) is not None:
        return text
    assert cell is not None
    if "paired_rate_ratio" not in cell:
        return "–"
    rate, cpu = cell["paired_rate_ratio"], cell["paired_cpu_ratio"]
    slices = cell["paired_slice_ratio"]["median"]
    low, high = cell["paired_slice_ratio_min"]["min"], cell["paired_slice_ratio_max"]["max"]
    mark = _mark(_row(report, name, None, scenario, "paired_rate_ratio"))
    ours, bare = cell["subject_cpu_us_per_message"]["median"], cell["reference_cpu_us_per_message"]["median"]
    return (
        f"{rate['median']:.2f} ({rate['min']:.2f}–{rate['max']:.2f}){mark} · CPU {cpu['median']:.2f}"
        f" · slices {slices:.2f} ({low:.2f}–{high:.2f}) · {ours:.1f} vs {bare:.1f} µs"
    )


def _paired_table(report: dict[str, Any]) -> list[str]:
    """The paired A/B measurements (bench/paired.py): what the two echo targets against bare Tornado judge."""
    if not any(paired_name(*pair) in report["summary"].get(s, {}) for s in PAIRED_SCENARIOS for pair in PAIRS):
        return []
    out = [
        "",
        "**Paired A/B echo: tornad_io ÷ bare Tornado, both servers up at once, the load alternating between them "
        "in 0.5 s slices** (A B B A …, 8 slices each; `bench/paired.py`). Each cell: the message rate ratio over "
        "all slices, median (min–max) of the rounds; the server CPU per message ratio (bare ÷ tornad_io); the "
        "median ratio of adjacent slice pairs (lowest–highest slice pair of all rounds); server CPU per message, "
        "tornad_io vs bare Tornado. The two echo targets against bare Tornado are judged here.",
        "",
        "| scenario | websocket | xhr-polling |",
        "|---|---|---|",
    ]
    for scenario in PAIRED_SCENARIOS:
        cells = [_paired_cell(report, paired_name(*pair), scenario) for pair in PAIRS]
        out.append(f"| {SCENARIOS[scenario].describe()} | " + " | ".join(cells) + " |")
    return out


def _backlogs() -> tuple[Any, Any]:
    """tornad_io's ``SocketIOServer`` default backlog and Tornado's ``Application.listen`` default."""
    import tornado.netutil

    try:
        from tornad_io.server import DEFAULT_BACKLOG
    except ImportError:
        DEFAULT_BACKLOG = "?"  # noqa: N806
    return DEFAULT_BACKLOG, getattr(tornado.netutil, "_DEFAULT_BACKLOG", "?")


def render(report: dict[str, Any]) -> str:
    """The results as Markdown: machine, tables, targets."""
    meta, summary = report["meta"], report["summary"]
    rounds = report["config"]["rounds"]
    timing = report["config"]["timing"]
    out = [
        f"Run of {meta['date']} on {meta['cpu']} ({meta['cores']} cores, Linux {meta['kernel']}), "
        f"Python {meta['python']}, Tornado {meta['tornado']}, tornad_io {meta['tornad_io']} ({meta['git']}), "
        f"python-socketio {meta['python-socketio']} / python-engineio {meta['python-engineio']}, "
        f"node {meta.get('node')} / socket.io {meta.get('node_socket.io')}, uvloop {meta.get('uvloop')}; "
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
    out += _paired_table(report)
    out += [
        "",
        "**Socket.IO v5 (Engine.IO v4), tornad_io against python-socketio on the same client packets**, "
        "messages/s (broadcast: deliveries/s); tornad_io v5's fan-out is `Handler.broadcast` on the main namespace "
        "of its `fanout` resource, python-socketio's is `send(skip_sid=sender)` on its `/fanout` namespace; "
        '"÷ tornad_io 0.6": the same tornad_io server\'s 0.6 contestant on the same transport',
        "",
        "| scenario | tornad_io v5 websocket | python-socketio websocket | ÷ python-socketio | ÷ tornad_io 0.6 "
        "| tornad_io v5 polling | python-socketio polling | ÷ python-socketio | ÷ tornad_io 0.6 xhr-polling |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in ECHO + BROADCAST:
        cells = summary.get(scenario, {})
        row = []
        for ours, rival, older in V5_GROUPS:
            row += [
                _rate_cell(cells.get(ours)),
                _rate_cell(cells.get(rival)),
                _ratio(report, ours, rival, scenario),
                _ratio(report, ours, older, scenario),
            ]
        out.append(f"| {SCENARIOS[scenario].describe()} | " + " | ".join(row) + " |")
    out += [
        "",
        "**With uvloop** (the same servers, `--uvloop`: the bench script installs uvloop's event loop policy "
        "before Tornado starts; tornad_io never does), messages/s; no target",
        "",
        "| scenario | tornad_io ws | bare Tornado ws | ÷ bare Tornado | ÷ tornad_io on asyncio "
        "| tornad_io xhr | bare Tornado long-poll | ÷ bare Tornado | ÷ tornad_io on asyncio |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for scenario in ECHO:
        cells = summary.get(scenario, {})
        row = []
        for transport in ("ws", "xhr"):
            ours, bare = f"tornad_io-{transport}-uvloop", ("tornado-ws" if transport == "ws" else "tornado-longpoll")
            row += [
                _rate_cell(cells.get(ours)),
                _rate_cell(cells.get(bare + "-uvloop")),
                _ratio(report, ours, bare + "-uvloop", scenario),
                _ratio(report, ours, f"tornad_io-{transport}", scenario),
            ]
        out.append(f"| {SCENARIOS[scenario].describe()} | " + " | ".join(row) + " |")
    out += [
        "",
        "**Broadcast over websocket, deliveries/s** · server CPU per delivery (tornad_io: "
        + ("`Handler.broadcast`" if _has_broadcast() else "a loop of `send`")
        + "; bare Tornado: a loop of `write_message`; python-socketio: `send(skip_sid=sender)`;"
        " node 0.6.18: `client.broadcast`). Ratios: rate, tornad_io ÷ the other; CPU, tornad_io's server CPU "
        "per delivery ÷ the other's",
        "",
        HEADER,
        RULE,
    ]
    for scenario in BROADCAST:
        cells = summary.get(scenario, {})
        out.append(
            f"| {SCENARIOS[scenario].describe()} | "
            + " | ".join(_rate_cell(cells.get(name)) for name in WS_GROUP)
            + " | "
            + " | ".join(_broadcast_ratio(report, other, scenario) for other in WS_GROUP[1:])
            + " |"
        )
    out += [
        "",
        "**Longest single broadcast call**, ms per 1,000 receivers: the CPU time of the call that used the most "
        "(`time.thread_time()`, what the call kept the IOLoop busy for, garbage collections included), and in "
        "parentheses the longest wall time (`time.perf_counter()`, which also counts moments the OS gave the "
        "core to another process); each fan-out call is timed by the server, the longest of the measurement "
        "window; – : the server does not report it",
        "",
        "| scenario | tornad_io | bare Tornado | python-socketio | node 0.6.18 | tornad_io ÷ bare Tornado |",
        "|---|---|---|---|---|---|",
    ]
    for scenario in BROADCAST:
        cells = summary.get(scenario, {})
        judged = _row(report, "tornad_io-ws", None, scenario, "broadcast_max_cpu_ms_per_1000")
        out.append(
            f"| {SCENARIOS[scenario].describe()} | "
            + " | ".join(
                _figure_cell(cells.get(name), "broadcast_max_cpu_ms_per_1000", 2, unit="ms")
                + _wall_note(cells.get(name))
                + (_mark(judged) if name == "tornad_io-ws" else "")
                for name in WS_GROUP
            )
            + f" | {_ratio(report, 'tornad_io-ws', 'tornado-ws', scenario, 'broadcast_max_cpu_ms_per_1000')} |"
        )
    cells = summary.get("idle-c1000", {})
    out += [
        "",
        "**1,000 idle websocket connections**: server RSS growth per connection, and connections opened per second "
        "(50 at a time, each through its Socket.IO handshake)",
        "",
        HEADER.replace("| scenario |", "| figure |"),
        RULE,
        "| RSS per connection | "
        + " | ".join(_figure_cell(cells.get(name), "rss_per_connection", scale=1024, unit="KiB") for name in WS_GROUP)
        + " | "
        + " | ".join(_ratio(report, WS_GROUP[0], other, "idle-c1000", "rss_per_connection") for other in WS_GROUP[1:])
        + " |",
        "| connect rate | "
        + " | ".join(_figure_cell(cells.get(name), "connect_rate", unit="/s") for name in WS_GROUP)
        + " | "
        + " | ".join(_ratio(report, WS_GROUP[0], other, "idle-c1000", "connect_rate") for other in WS_GROUP[1:])
        + " |",
    ]
    scenario = SCENARIOS["idle-c10000-cpu"]
    cells = summary.get(scenario.name, {})
    judged = _row(report, "tornad_io-ws", None, scenario.name, "cpu_percent")
    idle_rows = (
        ("server CPU, % of one core", "cpu_percent", 2, 1, "%"),
        ("server CPU per heartbeat (sent and answered)", "server_cpu_us_per_heartbeat", 1, 1, "µs"),
        ("RSS per connection", "rss_per_connection", 1, 1024, "KiB"),
        ("fewest heartbeats one connection answered in the window", "heartbeats_min_per_connection", 0, 1, ""),
        ("interval between heartbeats, as the client saw it", "heartbeat_gap_s", 2, 1, "s"),
        ("connect rate", "connect_rate", 0, 1, "/s"),
    )
    out += [
        "",
        f"**{scenario.connections:,} idle websockets with the default heartbeats answered**: the server's CPU over "
        f"{HEARTBEAT_WINDOW:g} heartbeat intervals ({HEARTBEAT_WINDOW * DEFAULT_HEARTBEAT_INTERVAL:g} s) after a "
        f"{HEARTBEAT_SETTLE * DEFAULT_HEARTBEAT_INTERVAL:g} s settle, the client answering every heartbeat as the 0.6 "
        f"client does; connections opened {scenario.concurrency} at a time",
        "",
        "| figure | tornad_io | node 0.6.18 | ÷ node 0.6.18 |",
        "|---|---|---|---|",
    ]
    for title, figure, digits, scale, unit in idle_rows:
        out.append(
            f"| {title} | {_figure_cell(cells.get('tornad_io-ws'), figure, digits, scale, unit)}"
            + (_mark(judged) if figure == "cpu_percent" else "")
            + f" | {_figure_cell(cells.get('node06-ws'), figure, digits, scale, unit)}"
            + f" | {_ratio(report, 'tornad_io-ws', 'node06-ws', scenario.name, figure)} |"
        )
    scenario = SCENARIOS["connect-c10000"]
    cells = summary.get(scenario.name, {})
    judged = _row(report, "tornad_io-ws", None, scenario.name, "listen_drops")
    ours, tornados = _backlogs()
    connect_rows = (
        ("SYN drops (`TcpExt: ListenDrops` Δ)", "listen_drops", 0, 1, ""),
        ("accept queue overflows (`TcpExt: ListenOverflows` Δ)", "listen_overflows", 0, 1, ""),
        ("retransmitted segments (`Tcp: RetransSegs` Δ)", "retransmitted_segments", 0, 1, ""),
        ("connect rate", "connect_rate", 0, 1, "/s"),
        ("slowest connect", "slowest_connect_ms", 0, 1, "ms"),
        ("server CPU per connect", "server_cpu_us_per_connect", 0, 1, "µs"),
    )
    out += [
        "",
        f"**{scenario.connections:,} websockets connecting, {scenario.concurrency:,} handshakes in flight**, each "
        "server listening its library's own way: tornad_io through `SocketIOServer` (backlog "
        f"{ours}), bare Tornado as `Application.listen` does (backlog {tornados}). Kernel counters are "
        "machine-wide (anything else on the machine counts too); the 0 SYN drops target is judged on the worst run",
        "",
        "| figure | tornad_io | bare Tornado |",
        "|---|---|---|",
    ]
    for title, figure, digits, scale, unit in connect_rows:
        out.append(
            f"| {title} | {_figure_cell(cells.get('tornad_io-ws'), figure, digits, scale, unit)}"
            + (_mark(judged) if figure == "listen_drops" else "")
            + f" | {_figure_cell(cells.get('tornado-ws'), figure, digits, scale, unit)} |"
        )
    verdicts: dict[str, list[dict[str, Any]]] = {}
    for row in report["comparisons"]:
        verdicts.setdefault(row["target"], []).append(row)
    out += ["", "**Targets**", "", "| target | verdict |", "|---|---|"]
    for label, rows in verdicts.items():
        measured = [row for row in rows if row["status"] != "not measured"]
        met = sum(1 for row in measured if row["status"] == "met")
        if not measured:
            verdict = "not measured"
        elif met == len(measured):
            verdict = f"met ({met}/{len(measured)})"
        else:
            missed = [_missed(row) for row in measured if row["status"] != "met"]
            verdict = f"**missed** in {len(missed)}/{len(measured)}: " + ", ".join(missed)
        if measured and len(measured) < len(rows):
            verdict += f" (not measured: {', '.join(row['scenario'] for row in rows if row not in measured)})"
        out.append(f"| {label} | {verdict} |")
    return "\n".join(out)


def _missed(row: dict[str, Any]) -> str:
    """A scenario where a target was missed, with the figure it was judged on."""
    if "ratio" in row:
        return f"{row['scenario']} ({row['ratio']:.2f}×)"
    if "value" in row:
        return f"{row['scenario']} ({row['value']:,.2f})"
    return f"{row['scenario']} ({row['status']})"


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
    parser.add_argument(
        "--no-paired",
        action="store_true",
        help="skip the paired A/B echo (bench/paired.py), run once per round after the rounds",
    )
    parser.add_argument("--output", type=Path, help=f"where to write the JSON (default for a full run: {RESULTS})")
    parser.add_argument("--no-readme", action="store_true", help="do not write the table into bench/README.md")
    parser.add_argument(
        "--from-json",
        type=Path,
        help="summarize and judge the runs of a saved results file again with the current rules "
        "(rewrites that file and the README table), without running anything",
    )
    args = parser.parse_args(argv)
    if args.from_json is not None:
        return rejudge(args.from_json, readme=not args.no_readme)

    config = Config(smoke=args.smoke, rounds=1 if args.smoke else args.rounds, paired=not args.no_paired)
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


def rejudge(path: Path, readme: bool) -> int:
    """``--from-json``: the saved runs summarized and judged again, the file and the README table rewritten."""
    report = json.loads(path.read_text(encoding="utf-8"))
    report["summary"] = summarize(report["runs"])
    report["comparisons"] = compare(report["summary"])
    path.write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    table = render(report)
    print(table + f"\n\nresults rewritten in {path}")
    if readme and update_readme(table):
        print(f"table written to {README}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
