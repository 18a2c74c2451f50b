"""The benchmark keeps working: every contestant runs every scenario at a tiny size.

Only the count checks are asserted (every message sent was answered, byte for
byte and in order; every idle connection still answers).  No timing is
asserted: this is the benchmark's smoke mode (``python -m bench.run --smoke``),
seconds long, not a measurement.  python-socketio, node's socket.io 0.6.18
(``node06-ws``, ``node06-xhr``: node and ``bench/node06/node_modules``) and
uvloop (the ``*-uvloop`` contestants) are skipped, with the reason, when they
are not installed: the bench setup (``make bench-setup``) installs them, the
test suite's setup does not.
"""

from __future__ import annotations

import pytest

from bench.contestants import CONTESTANTS
from bench.paired import PAIRS, paired_name, run_paired
from bench.run import SMOKE_TIMING, smoke_contestant
from bench.scenarios import SCENARIOS, enters


@pytest.mark.parametrize("name", list(CONTESTANTS))
def test_every_message_is_accounted_for(name: str) -> None:
    contestant = CONTESTANTS[name]
    reason = contestant.unavailable()
    if reason is not None:
        pytest.skip(f"{name}: {reason}")

    records = smoke_contestant(contestant)

    expected = {s.name for s in SCENARIOS.values() if enters(contestant, s)}
    assert {r["scenario"] for r in records} == expected
    failures = {r["scenario"]: r["error"] for r in records if not r["ok"]}
    assert not failures, failures
    for record in records:
        scenario = SCENARIOS[record["scenario"]]
        connections = scenario.size(smoke=True)
        assert record["connections"] == connections
        if scenario.kind == "echo":
            assert record["messages_checked"] >= connections * SMOKE_TIMING.min_messages
        elif scenario.kind == "broadcast":
            assert record["messages_sent"] >= SMOKE_TIMING.min_messages
            assert record["messages_checked"] == record["messages_sent"] * connections
            if contestant.stats:  # the server timed its fan-out calls (GET /bench-stats)
                assert record["broadcast_calls"] >= 1
                assert record["broadcast_max_ms"] > 0
        elif scenario.kind == "idle-cpu":
            assert record["heartbeats_min_per_connection"] >= 2
            assert record["messages_checked"] == connections
        else:
            assert record["messages_checked"] == connections


def test_a_wrong_answer_fails_the_count_check() -> None:
    """A contestant whose server answers something else must fail, not score."""
    import dataclasses

    from bench.contestants import BareWebSocket

    class Liar(BareWebSocket):
        def incoming(self, text: str, channel: str) -> bytes:
            return super().incoming(text, channel) + b"!"

    contestant = dataclasses.replace(CONTESTANTS["tornado-ws"], name="liar", adapter=Liar())
    records = smoke_contestant(contestant, ["echo-c1-ascii", "broadcast-r100"])
    assert [r["ok"] for r in records] == [False, False]
    assert all("expected" in r["error"] for r in records)


def test_the_v5_contestants_send_python_socketio_s_bytes() -> None:
    """tornad_io's v5 contestants get python-socketio's very packets; only the fan-out drops the namespace."""
    from bench.contestants import message_text

    ours, theirs = CONTESTANTS["tornad_io-v5-ws"].ws, CONTESTANTS["sio-ws"].ws
    ours_poll, theirs_poll = CONTESTANTS["tornad_io-v5-poll"].poll, CONTESTANTS["sio-poll"].poll
    assert ours.path("echo") == theirs.path("echo")
    for charset in ("ascii", "cjk"):
        text = message_text(charset, 7, 42)
        echo = theirs.outgoing(text, "echo")
        assert echo.startswith(b'42["message",')
        assert ours.outgoing(text, "echo") == echo
        assert ours_poll.outgoing(text) == theirs_poll.outgoing(text) == echo.decode("utf-8")
        # python-socketio's fan-out is its /fanout namespace; tornad_io's the main namespace of /fanout/.
        assert theirs.outgoing(text, "fanout") == b"42/fanout," + echo[2:]
        assert ours.outgoing(text, "fanout") == echo


@pytest.mark.parametrize("pair", PAIRS, ids=[paired_name(*pair) for pair in PAIRS])
def test_the_paired_measurement_alternates_and_checks_every_message(pair: tuple[str, str]) -> None:
    """Both servers up, slices alternating: every message of both sides counted, the ratios computed."""
    record = run_paired(*pair, "echo-c10-ascii", SMOKE_TIMING, cpu=None, slices=2, slice_seconds=0.05, smoke=True)
    assert record["ok"], record.get("error")
    assert record["contestant"] == paired_name(*pair)
    assert record["paired_rate_ratio"] > 0 and record["paired_cpu_ratio"] > 0
    assert record["paired_slice_ratio_min"] <= record["paired_slice_ratio"] <= record["paired_slice_ratio_max"]
    assert record["messages_checked"] >= 2 * SCENARIOS["echo-c10-ascii"].size(smoke=True)
