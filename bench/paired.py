"""The paired A/B echo: two servers up at once, the load alternating between them in short slices.

Why: on this machine (a VM on a shared host) the CPU a server spends per
message drifts by a third within seconds, whatever the server does.  One
tornad_io server measured over eight consecutive 1 s windows of the same
xhr-polling echo cost 665, 635, 630, 440, 460, 405, 630 and 680 µs per
message; a bare Tornado long-poll beside it 1,035 down to 605.  Runs of the
two contestants a few seconds apart (the per-contestant runs of
:mod:`bench.run`) then compare different moments of the host as much as
different servers.  Here both servers are started, each with its
connections open and every echo loop parked; then each server in turn gets
the load for one slice (``SLICE`` seconds) while the other's connections
wait, in the order A B B A A B ... so that a steady drift weighs on both
alike.  A slice ends when every loop has its last message answered, so the
server's CPU time over the slice is exactly what its counted messages cost.

The figures: the rate ratio (subject's messages per second over all its
slices, ÷ the reference's), the server CPU per message ratio (reference ÷
subject), and the ratio of each adjacent pair of slices (median and range).
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from bench.contestants import CONTESTANTS, Contestant
from bench.scenarios import SCENARIOS, BenchFailure, Meter, Scenario, Timing, check_counts, echo_loops
from bench.serverproc import ServerError, ServerProcess

__all__ = ["PAIRS", "PAIRED_SCENARIOS", "SLICE", "SLICES", "paired_echo", "paired_name", "run_paired"]

#: (subject, reference): tornad_io against the bare Tornado server of the same transport.
PAIRS = (("tornad_io-ws", "tornado-ws"), ("tornad_io-xhr", "tornado-longpoll"))
#: The echo scenarios the ratio targets judge.
PAIRED_SCENARIOS = ("echo-c10-ascii", "echo-c100-ascii", "echo-c10-cjk", "echo-c100-cjk")
#: Slices per server, and the length of one (seconds).
SLICES = 8
SLICE = 0.5


def paired_name(subject: str, reference: str) -> str:
    """The name a paired measurement is recorded under (as if it were a contestant)."""
    return f"{subject}÷{reference}"


async def _slice(meter: Meter, seconds: float, timeout: float) -> tuple[int, float, float]:
    """Release ``meter``'s loops for ``seconds``, then park them all: (messages, wall s, server CPU s)."""
    start = meter.snapshot()
    meter.release()
    await meter.pause(seconds)
    await meter.wait_all([meter.hold()], timeout, "the slice's last echoes")
    end = meter.snapshot()
    return end.count - start.count, end.wall - start.wall, end.server_cpu - start.server_cpu


async def paired_echo(
    scenario: Scenario,
    servers: tuple[tuple[Contestant, int, int], tuple[Contestant, int, int]],
    timing: Timing,
    slices: int = SLICES,
    slice_seconds: float = SLICE,
    smoke: bool = False,
) -> dict[str, Any]:
    """``servers``: (contestant, port, pid) of the subject and of the reference, both listening."""
    opened: list[Any] = []
    try:
        sides = []
        for contestant, port, pid in servers:
            meter = Meter(pid)
            loops = await echo_loops(contestant, scenario, port, meter, timing, smoke, opened)
            parked = meter.hold()  # each loop parks after its first echo
            for loop in loops:
                loop.start()
            await meter.wait_all([parked], timing.timeout, "the first echoes")
            sides.append((meter, loops))
        for meter, _ in sides:  # warm-up, not counted
            await _slice(meter, timing.warmup, timing.timeout)
        totals = [[0, 0.0, 0.0], [0, 0.0, 0.0]]
        pair_ratios = []
        for number in range(slices):
            order = (0, 1) if number % 2 == 0 else (1, 0)
            rates = [0.0, 0.0]
            for side in order:
                messages, wall, cpu = await _slice(sides[side][0], slice_seconds, timing.timeout)
                totals[side][0] += messages
                totals[side][1] += wall
                totals[side][2] += cpu
                rates[side] = messages / wall
            pair_ratios.append(rates[0] / rates[1] if rates[1] else float("nan"))
        for meter, loops in sides:
            check_counts(meter, loops)
    finally:
        for connection in opened:
            connection.close()
        await asyncio.sleep(0)
    (a_count, a_wall, a_cpu), (b_count, b_wall, b_cpu) = totals
    a_rate, b_rate = a_count / a_wall, b_count / b_wall
    a_cpu_us = a_cpu / a_count * 1e6 if a_count else float("nan")
    b_cpu_us = b_cpu / b_count * 1e6 if b_count else float("nan")
    return {
        "paired_rate_ratio": a_rate / b_rate,
        "paired_cpu_ratio": b_cpu_us / a_cpu_us if a_cpu_us else float("nan"),
        "paired_slice_ratio": statistics.median(pair_ratios),
        "paired_slice_ratio_min": min(pair_ratios),
        "paired_slice_ratio_max": max(pair_ratios),
        "subject_rate": a_rate,
        "reference_rate": b_rate,
        "subject_cpu_us_per_message": a_cpu_us,
        "reference_cpu_us_per_message": b_cpu_us,
        "messages_checked": a_count + b_count,
        "slices": slices,
        "slice_s": slice_seconds,
    }


def run_paired(
    subject: str,
    reference: str,
    scenario_name: str,
    timing: Timing,
    cpu: int | None,
    slices: int = SLICES,
    slice_seconds: float = SLICE,
    smoke: bool = False,
) -> dict[str, Any]:
    """Start both servers (on the same core), measure, stop them; a run record (``ok`` False on failure)."""
    scenario = SCENARIOS[scenario_name]
    record: dict[str, Any] = {
        "contestant": paired_name(subject, reference),
        "scenario": scenario_name,
        "subject": subject,
        "reference": reference,
    }
    try:
        with (
            ServerProcess(CONTESTANTS[subject], cpu=cpu, args=scenario.arguments(smoke)) as a,
            ServerProcess(CONTESTANTS[reference], cpu=cpu, args=scenario.arguments(smoke)) as b,
        ):
            servers = ((CONTESTANTS[subject], a.port, a.pid), (CONTESTANTS[reference], b.port, b.pid))
            record.update(asyncio.run(paired_echo(scenario, servers, timing, slices, slice_seconds, smoke)))
            record["ok"] = True
            for server in (a, b):
                if not server.alive():
                    record["ok"] = False
                    record["error"] = f"{server.contestant.name} died\n{server.log_tail()}"
    except (BenchFailure, ServerError) as exc:
        record["ok"] = False
        record["error"] = str(exc)
    return record
