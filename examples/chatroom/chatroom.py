"""A multi-user chat room on tornad_io.

Run it from the top of the repository with ``make chatroom`` (or
``python examples/chatroom/chatroom.py --port 8888``) and open
http://127.0.0.1:8888/ in a few browser tabs.

What travels over the socket (every message is JSON):

client -> server
    ``{"nick": "alice"}``   join the room under a nickname (once per connection)
    ``{"text": "hello"}``   say something (a plain string works too)

server -> client, each a dict with a ``"type"``
    ``presence``  ``online`` (how many have joined) and ``people`` (their nicks);
                  sent to every connection, joined or not, whenever that changes
    ``welcome``   your (possibly de-duplicated) ``nick`` and the recent ``history``
    ``joined`` / ``left``   someone came or went: ``nick``, ``time``
    ``message``   ``nick``, ``text``, ``time``
    ``error``     ``text``: why the last thing you sent was refused
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
import unicodedata
from collections import deque
from pathlib import Path
from typing import Any

import tornado.web

try:
    from tornad_io import SocketIOHandler, SocketIOServer
except ImportError:  # run straight from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from tornad_io import SocketIOHandler, SocketIOServer

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
INDEX_HTML = HERE / "index.html"
REPO_ROOT = HERE.parent.parent
DEFAULT_CLIENT_JS = REPO_ROOT / "node_modules" / "socket.io" / "support" / "socket.io-client" / "socket.io.js"
CLIENT_JS_ENV = "SOCKET_IO_CLIENT_JS"

MAX_NICK_LENGTH = 24
MAX_TEXT_LENGTH = 500
HISTORY_LENGTH = 50
USAGE = 'Send {"nick": ...} to join, then {"text": ...} (or a plain string) to talk.'


class ClientScriptMissing(FileNotFoundError):
    """The Socket.IO 0.6 browser client (socket.io.js) could not be found."""


def find_client_js() -> Path:
    """Where socket.io.js is: ``$SOCKET_IO_CLIENT_JS`` if set, else the repository's node_modules."""
    configured = os.environ.get(CLIENT_JS_ENV)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ClientScriptMissing(f"{CLIENT_JS_ENV} is set to {configured!r}, which is not a file.")
        return path
    if not DEFAULT_CLIENT_JS.is_file():
        raise ClientScriptMissing(
            f"The Socket.IO browser client is missing ({DEFAULT_CLIENT_JS} does not exist).\n"
            "Run `make chatroom` from the top of the repository, or `npm install` there, "
            f"or point {CLIENT_JS_ENV} at a copy of socket.io.js (Socket.IO 0.6)."
        )
    return DEFAULT_CLIENT_JS


def clean(value: str, limit: int) -> str:
    """``value`` without control characters, with runs of whitespace made single spaces, cut to ``limit``."""
    printable = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in value)
    return " ".join(printable.split())[:limit]


class ChatRoom:
    """Who has joined under which nick, and what was said lately.

    One room per application (``make_app`` puts it in the settings).  Who is
    connected is tornad_io's business: ``ChatHandler.broadcast`` reaches every
    open tab, so the room keeps no set of connections.  Everything here runs
    on the IOLoop, so no locking is needed.
    """

    def __init__(self, history_length: int = HISTORY_LENGTH) -> None:
        self.nicks: dict[ChatHandler, str] = {}
        self.history: deque[dict[str, Any]] = deque(maxlen=history_length)

    # -- what the handlers call -----------------------------------------------------------

    def arrive(self, handler: ChatHandler) -> None:
        handler.send(self.presence())

    def join(self, handler: ChatHandler, wanted: Any) -> None:
        if handler in self.nicks:
            handler.send(error(f"You are already in the room as {self.nicks[handler]}."))
            return
        if not isinstance(wanted, str) or not clean(wanted, MAX_NICK_LENGTH):
            handler.send(error("Pick a nickname: a few letters will do."))
            return
        nick = self.unique_nick(clean(wanted, MAX_NICK_LENGTH))
        self.nicks[handler] = nick
        log.info("%s joined (%s)", nick, handler.protocol)
        event = self.record({"type": "joined", "nick": nick})
        handler.send({"type": "welcome", "nick": nick, "history": list(self.history)})
        ChatHandler.broadcast(event, exclude=handler)  # the newcomer has it in its welcome
        ChatHandler.broadcast(self.presence())

    def say(self, handler: ChatHandler, text: Any) -> None:
        nick = self.nicks.get(handler)
        if nick is None:
            handler.send(error("Pick a nickname before you talk."))
            return
        if not isinstance(text, str):
            handler.send(error("Messages are text."))
            return
        text = clean(text, MAX_TEXT_LENGTH)
        if text:
            ChatHandler.broadcast(self.record({"type": "message", "nick": nick, "text": text}))

    def leave(self, handler: ChatHandler) -> None:
        nick = self.nicks.pop(handler, None)
        if nick is None:
            return  # never joined: nobody needs to hear about it
        log.info("%s left", nick)
        ChatHandler.broadcast(self.record({"type": "left", "nick": nick}))
        ChatHandler.broadcast(self.presence())

    # -- helpers --------------------------------------------------------------------------

    def presence(self) -> dict[str, Any]:
        people = sorted(self.nicks.values(), key=str.casefold)
        return {"type": "presence", "online": len(people), "people": people}

    def unique_nick(self, nick: str) -> str:
        taken = {name.casefold() for name in self.nicks.values()}
        candidate, number = nick, 1
        while candidate.casefold() in taken:
            number += 1
            suffix = f" {number}"
            candidate = nick[: MAX_NICK_LENGTH - len(suffix)] + suffix
        return candidate

    def record(self, event: dict[str, Any]) -> dict[str, Any]:
        event["time"] = round(time.time(), 3)
        self.history.append(event)
        return event


def error(text: str) -> dict[str, str]:
    return {"type": "error", "text": text}


class ChatHandler(SocketIOHandler):
    """One browser tab: hands what it hears to the room of its application."""

    @property
    def room(self) -> ChatRoom:
        room: ChatRoom = self.settings["chat_room"]
        return room

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        self.room.arrive(self)

    def on_message(self, message: Any) -> None:
        if isinstance(message, str):
            message = {"text": message}
        if not isinstance(message, dict):
            self.send(error(USAGE))
        elif "nick" in message:
            self.room.join(self, message["nick"])
        elif "text" in message:
            self.room.say(self, message["text"])
        else:
            self.send(error(USAGE))

    def on_close(self) -> None:
        self.room.leave(self)


class IndexHandler(tornado.web.RequestHandler):
    """The chat page, read from disk on each request so edits show up on reload."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(INDEX_HTML.read_bytes())


class ClientScriptHandler(tornado.web.RequestHandler):
    """The Socket.IO 0.6 browser client, from memory."""

    def initialize(self, body: bytes) -> None:
        self.body = body

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.write(self.body)


def make_app(*, client_js: str | os.PathLike[str] | None = None, **settings: Any) -> tornado.web.Application:
    """The chat application; ``settings`` go to ``tornado.web.Application`` (tornad_io reads its own there).

    Raises :class:`ClientScriptMissing` when socket.io.js cannot be found.
    """
    script = Path(client_js) if client_js is not None else find_client_js()
    settings.setdefault("chat_room", ChatRoom())
    return tornado.web.Application(
        [
            (r"/", IndexHandler),
            (r"/socket\.io\.js", ClientScriptHandler, {"body": script.read_bytes()}),
            ChatHandler.routes("socket.io"),
        ],
        **settings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A multi-user chat room served by tornad_io.")
    parser.add_argument("--port", type=int, default=8888, help="port to listen on (default: 8888)")
    parser.add_argument("--address", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging, tornad_io internals included")
    args = parser.parse_args(argv)

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
    )
    try:
        application = make_app()
    except ClientScriptMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    host = args.address if args.address not in ("", "0.0.0.0", "::") else "127.0.0.1"
    log.info("starting the chat room on http://%s:%d/ (Ctrl-C stops it)", host, args.port)
    try:
        SocketIOServer(application, port=args.port, address=args.address)
    except OSError as exc:
        print(f"error: cannot listen on {args.address}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
