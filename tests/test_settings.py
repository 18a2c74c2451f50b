"""Settings are read once per application and checked."""

import pytest

from tornad_io.settings import ALL_PROTOCOLS, Settings


def test_defaults_match_the_documented_table() -> None:
    settings = Settings.from_application({})
    assert settings.enabled_protocols == frozenset(ALL_PROTOCOLS)
    assert (settings.heartbeat_interval, settings.heartbeat_timeout) == (10.0, 8.0)
    assert (settings.poll_timeout, settings.close_timeout) == (20.0, 8.0)
    assert settings.max_message_size == 1 << 20


def test_a_misspelt_transport_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="xhr_polling"):
        Settings.from_application({"enabled_protocols": ["websocket", "xhr_polling"]})


def test_a_string_is_not_a_list_of_transports() -> None:
    with pytest.raises(ValueError, match="list"):
        Settings.from_application({"enabled_protocols": "websocket"})


def test_timers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="socket_io_poll_timeout"):
        Settings.from_application({"socket_io_poll_timeout": 0})
