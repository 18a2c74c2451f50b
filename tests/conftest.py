"""Fixtures shared by the whole suite."""

from collections.abc import Iterator

import pytest

from tests.servers import RedisServer, redis_server_fixture


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    yield from redis_server_fixture()
