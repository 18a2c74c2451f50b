"""Fixtures shared by the whole suite."""

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser

from tests.chromium import headless_chromium
from tests.servers import RedisServer, redis_server_fixture


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One headless Chromium per test module (see tests/chromium.py for why not per session)."""
    with headless_chromium() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()
