"""A multi-user chat with channels, on tornad_io.

Run it from the top of the repository with ``make chatroom`` (or
``python examples/chatroom/chatroom.py --port 8888``) and open
http://127.0.0.1:8888/#kitchen and http://127.0.0.1:8888/#garden in a few
browser tabs (no ``#name`` means ``#lobby``).  http://127.0.0.1:8888/v5#kitchen
is the same page on today's socket.io-client 4.x (Socket.IO v5): its tabs
chat with the 0.6 tabs of the same channel, through the same ``ChatHandler``.

A page's channel is part of its Socket.IO URL: the page connects with the
0.6 client option ``resource: "chat/<channel>"`` (v5: ``path: "/chat/<channel>/"``),
the route below only accepts names matching ``CHANNEL``, and ``on_open`` joins
the tornad_io room of that name.  Whatever the whole channel hears goes out as
``broadcast(..., room=name)``.

What travels over the socket (every message is JSON):

client -> server
    ``{"nick": "alice"}``   join the channel under a nickname (once per connection)
    ``{"text": "hello"}``   say something (a plain string works too)

server -> client, each a dict with a ``"type"``
    ``presence``  ``channel``, ``online`` (how many have joined it) and ``people``
                  (their nicks); sent to a tab when it connects, and to every tab
                  on the channel, joined or not, whenever that changes
    ``welcome``   ``channel``, your (possibly de-duplicated) ``nick`` and the
                  channel's recent ``history``
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
DEFAULT_CLIENT_V5_JS = REPO_ROOT / "node_modules" / "socket.io-client" / "dist" / "socket.io.min.js"
CLIENT_V5_JS_ENV = "SOCKET_IO_CLIENT_V5_JS"

#: A channel name, as the URL /chat/<channel>/<transport>/... carries it (index.html checks the same).
CHANNEL = r"(?P<channel>[a-z0-9-]{1,32})"
MAX_NICK_LENGTH = 24
MAX_TEXT_LENGTH = 500
HISTORY_LENGTH = 50
#: Channels remembered, history included; past this, the least recently used that nobody is on go.
MAX_CHANNELS = 100
USAGE = 'Send {"nick": ...} to join, then {"text": ...} (or a plain string) to talk.'


class ClientScriptMissing(FileNotFoundError):
    """A Socket.IO browser client (0.6's socket.io.js, or socket.io-client 4.x) could not be found."""


def find_client_js() -> Path:
    """Where socket.io.js is: ``$SOCKET_IO_CLIENT_JS`` if set, else the repository's node_modules."""
    return _find_script(CLIENT_JS_ENV, DEFAULT_CLIENT_JS, "socket.io.js (Socket.IO 0.6)")


def find_client_v5_js() -> Path:
    """Where socket.io-client 4.x is: ``$SOCKET_IO_CLIENT_V5_JS`` if set, else the repository's node_modules."""
    return _find_script(CLIENT_V5_JS_ENV, DEFAULT_CLIENT_V5_JS, "socket.io.min.js (socket.io-client 4.x)")


def _find_script(env: str, default: Path, what: str) -> Path:
    configured = os.environ.get(env)
    if configured:
        path = Path(configured).expanduser()
        if not path.is_file():
            raise ClientScriptMissing(f"{env} is set to {configured!r}, which is not a file.")
        return path
    if not default.is_file():
        raise ClientScriptMissing(
            f"The Socket.IO browser client is missing ({default} does not exist).\n"
            "Run `make chatroom` from the top of the repository, or `npm install` there, "
            f"or point {env} at a copy of {what}."
        )
    return default


def clean(value: str, limit: int) -> str:
    """``value`` without control characters, with runs of whitespace made single spaces, cut to ``limit``."""
    printable = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in value)
    return " ".join(printable.split())[:limit]


class Channel:
    """What the server remembers about one channel: the nicks in use there and what was said lately.

    It keeps no connections: every tab on the channel joined the tornad_io room
    named ``self.name``, and ``ChatHandler.broadcast(..., room=self.name)``
    reaches them all.  Everything here runs on the IOLoop, so no locking is needed.
    """

    def __init__(self, name: str, history_length: int = HISTORY_LENGTH) -> None:
        self.name = name
        self.nicks: set[str] = set()
        self.history: deque[dict[str, Any]] = deque(maxlen=history_length)
        self.tabs = 0  # connections on this channel, with or without a nick

    def presence(self) -> dict[str, Any]:
        people = sorted(self.nicks, key=str.casefold)
        return {"type": "presence", "channel": self.name, "online": len(people), "people": people}

    def unique_nick(self, nick: str) -> str:
        """``nick``, numbered if someone on this channel has it already (case does not matter)."""
        taken = {name.casefold() for name in self.nicks}
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


class Chat:
    """Every channel of one application (``make_app`` puts one in the settings as ``chat``).

    Channel names come from URLs anyone can type, so channels nobody is on are
    forgotten, least recently used first, once there are more than ``max_channels``.
    """

    def __init__(self, history_length: int = HISTORY_LENGTH, max_channels: int = MAX_CHANNELS) -> None:
        self.history_length = history_length
        self.max_channels = max_channels
        self.channels: dict[str, Channel] = {}  # in order of use, the most recent last

    def enter(self, name: str) -> Channel:
        channel = self.channels.pop(name, None)
        if channel is None:
            channel = Channel(name, self.history_length)
            quiet = [old for old, known in self.channels.items() if known.tabs == 0]
            for old in quiet[: max(0, len(self.channels) + 1 - self.max_channels)]:
                del self.channels[old]
        self.channels[name] = channel
        channel.tabs += 1
        return channel

    def leave(self, channel: Channel) -> None:
        channel.tabs -= 1


def error(text: str) -> dict[str, str]:
    return {"type": "error", "text": text}


class ChatHandler(SocketIOHandler):
    """One browser tab on one channel, whose tornad_io room it joins in ``on_open``."""

    channel: Channel
    nick: str | None = None  # until the tab picks one

    @property
    def chat(self) -> Chat:
        chat: Chat = self.settings["chat"]
        return chat

    def on_open(self, *args: Any, **kwargs: Any) -> None:
        # kwargs["channel"] is the CHANNEL group of the URL; the route matched nothing else.
        self.channel = self.chat.enter(kwargs["channel"])
        self.join(self.channel.name)
        self.send(self.channel.presence())

    def on_message(self, message: Any) -> None:
        if isinstance(message, str):
            message = {"text": message}
        if not isinstance(message, dict):
            self.send(error(USAGE))
        elif "nick" in message:
            self.take_nick(message["nick"])
        elif "text" in message:
            self.say(message["text"])
        else:
            self.send(error(USAGE))

    def on_close(self) -> None:
        channel = self.channel
        self.chat.leave(channel)
        if self.nick is None:
            return  # never joined: nobody needs to hear about it
        log.info("%s left #%s", self.nick, channel.name)
        channel.nicks.discard(self.nick)
        # Room membership ended before on_close, so these reach the others on the channel only.
        ChatHandler.broadcast(channel.record({"type": "left", "nick": self.nick}), room=channel.name)
        ChatHandler.broadcast(channel.presence(), room=channel.name)

    def take_nick(self, wanted: Any) -> None:
        channel = self.channel
        if self.nick is not None:
            self.send(error(f"You are already in #{channel.name} as {self.nick}."))
            return
        if not isinstance(wanted, str) or not clean(wanted, MAX_NICK_LENGTH):
            self.send(error("Pick a nickname: a few letters will do."))
            return
        self.nick = channel.unique_nick(clean(wanted, MAX_NICK_LENGTH))
        channel.nicks.add(self.nick)
        log.info("%s joined #%s (%s)", self.nick, channel.name, self.protocol)
        event = channel.record({"type": "joined", "nick": self.nick})
        self.send({"type": "welcome", "channel": channel.name, "nick": self.nick, "history": list(channel.history)})
        ChatHandler.broadcast(event, room=channel.name, exclude=self)  # the newcomer has it in its welcome
        ChatHandler.broadcast(channel.presence(), room=channel.name)

    def say(self, text: Any) -> None:
        if self.nick is None:
            self.send(error("Pick a nickname before you talk."))
            return
        if not isinstance(text, str):
            self.send(error("Messages are text."))
            return
        text = clean(text, MAX_TEXT_LENGTH)
        if text:
            event = self.channel.record({"type": "message", "nick": self.nick, "text": text})
            ChatHandler.broadcast(event, room=self.channel.name)


class IndexHandler(tornado.web.RequestHandler):
    """The chat page, read from disk on each request so edits show up on reload.

    At ``/v5`` it loads socket.io-client 4.x in place of the 0.6 client; the
    page's script works with either.
    """

    def initialize(self, client_script: str = "/socket.io.js") -> None:
        self.client_script = client_script

    def get(self) -> None:
        page = INDEX_HTML.read_bytes()
        if self.client_script != "/socket.io.js":
            page = page.replace(b'<script src="/socket.io.js">', f'<script src="{self.client_script}">'.encode())
        self.set_header("Content-Type", "text/html; charset=UTF-8")
        self.set_header("Cache-Control", "no-cache")
        self.write(page)


class ClientScriptHandler(tornado.web.RequestHandler):
    """A Socket.IO browser client, from memory."""

    def initialize(self, body: bytes) -> None:
        self.body = body

    def get(self) -> None:
        self.set_header("Content-Type", "application/javascript; charset=UTF-8")
        self.write(self.body)


def make_app(
    *,
    client_js: str | os.PathLike[str] | None = None,
    client_v5_js: str | os.PathLike[str] | None = None,
    **settings: Any,
) -> tornado.web.Application:
    """The chat application; ``settings`` go to ``tornado.web.Application`` (tornad_io reads its own there).

    Raises :class:`ClientScriptMissing` when a browser client cannot be found.
    """
    script = Path(client_js) if client_js is not None else find_client_js()
    script_v5 = Path(client_v5_js) if client_v5_js is not None else find_client_v5_js()
    settings.setdefault("chat", Chat())
    return tornado.web.Application(
        [
            (r"/", IndexHandler),
            (r"/v5", IndexHandler, {"client_script": "/socket.io.v5.js"}),
            (r"/socket\.io\.js", ClientScriptHandler, {"body": script.read_bytes()}),
            (r"/socket\.io\.v5\.js", ClientScriptHandler, {"body": script_v5.read_bytes()}),
            # 0.6 at /chat/<channel>/<transport>/..., v5 at /chat/<channel>/?EIO=4&transport=...
            ChatHandler.routes("chat", CHANNEL, "/"),
        ],
        **settings,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="A multi-user chat with channels, served by tornad_io.")
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
    log.info("starting the chat on http://%s:%d/ (add #name for a channel; Ctrl-C stops it)", host, args.port)
    try:
        SocketIOServer(application, port=args.port, address=args.address)
    except OSError as exc:
        print(f"error: cannot listen on {args.address}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
