"""Fixtures shared by the whole suite."""

from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
from playwright.sync_api import Browser

from tests import engines
from tests.engines import Engine
from tests.servers import RedisServer, redis_server_fixture


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium (Playwright) per test module (tests/engines.py says why not per session)."""
    with engines.playwright_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module", params=engines.ENGINE_NAMES)
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """Each browser engine in turn, one browser process per engine and test module.

    A test that takes ``engine`` runs once per engine (tests/engines.py); parametrize ``engine``
    with ``indirect=True`` to run it in fewer.
    """
    with engines.running(request.param, lambda: request.getfixturevalue("browser")) as started:
        yield started


@pytest.fixture(scope="module")
def all_engines(request: pytest.FixtureRequest) -> Iterator[dict[str, Engine]]:
    """Every engine at once, by name, for pages of different engines talking to each other."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(engines.running(name, lambda: request.getfixturevalue("browser")))
            for name in engines.ENGINE_NAMES
        }


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()


def _engine_of(item: pytest.Item) -> str | None:
    callspec: Any = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("engine")


@pytest.hookimpl(trylast=True)  # after pytest's own ordering by fixture parameters
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Within each module, run the tests of one engine one after the other, so that each browser
    # starts once per module (a test parametrized over (engine, transport) pairs would otherwise
    # switch engines back and forth). The modules keep their order; so do tests of one engine.
    rank = {name: number for number, name in enumerate(engines.ENGINE_NAMES)}

    def engine_rank(item: pytest.Item) -> int:
        engine = _engine_of(item)
        return -1 if engine is None else rank[engine]

    start = 0
    while start < len(items):  # each run of consecutive items of one module
        module = items[start].nodeid.split("::")[0]
        end = start
        while end < len(items) and items[end].nodeid.split("::")[0] == module:
            end += 1
        items[start:end] = sorted(items[start:end], key=engine_rank)
        start = end

    # Tag each browser test with the engines it runs in, for the summary below.
    for item in items:
        engine = _engine_of(item)
        if engine is not None:
            item.user_properties.append(("engines", (engine,)))
        elif "all_engines" in getattr(item, "fixturenames", ()):
            item.user_properties.append(("engines", engines.ENGINE_NAMES))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    counts: dict[str, dict[str, int]] = {name: {} for name in engines.ENGINE_NAMES}
    for outcome in ("passed", "failed", "error", "skipped"):
        for report in terminalreporter.stats.get(outcome, []):
            for key, names in getattr(report, "user_properties", []):
                if key == "engines":
                    for name in names:
                        counts[name][outcome] = counts[name].get(outcome, 0) + 1
    if not any(counts.values()):
        return
    terminalreporter.section("browser engines")
    for name in engines.ENGINE_NAMES:
        version = engines.STARTED.get(name, "not started")
        tally = ", ".join(f"{number} {outcome}" for outcome, number in counts[name].items()) or "no tests"
        terminalreporter.write_line(f"{name:9} {version:32} {tally}")
