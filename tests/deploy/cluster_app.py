"""One tornad_io process of the nginx test: a room where every message goes to everyone else.

Started by tests/deploy/test_nginx.py as
``python -c "from tests.deploy.cluster_app import main; main()" READY_FILE WORKER_TAG REDIS_URL``.
The handler is imported from this module in every process, so its dotted name (which is how a
broadcast relayed by Redis finds its class) is the same everywhere.

Besides Socket.IO the process serves the test page and the real 0.6.3 client, so that the
browser loads everything through nginx from one origin. It runs behind a proxy, hence
``xheaders=True``; INFO logging goes to stderr, where tornad_io logs each session's
``open <transport> <id> from <remote_ip>``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path
from typing import Any

import tornado.web

from tests.helpers import StaticFile
from tornad_io import SocketIOHandler, SocketIOServer
from tornad_io.registry import registry_for

HERE = Path(__file__).resolve().parent
PAGE_HTML = HERE / "page.html"
CLIENT_JS = HERE.parents[1] / "node_modules" / "socket.io" / "support" / "socket.io-client" / "socket.io.js"


class Room(SocketIOHandler):
    def on_open(self, *args: Any, **kwargs: Any) -> None:
        # Which process took the session, and who it thinks the client is (X-Real-IP via xheaders).
        self.send({"worker": self.settings["socket_io_worker_tag"], "ip": self.request.remote_ip})

    def on_message(self, message: Any) -> None:
        type(self).broadcast(message, exclude=self)


class NoContent(tornado.web.RequestHandler):
    def get(self) -> None:
        self.set_status(204)  # the browser's automatic /favicon.ico


def make_app(**settings: Any) -> tornado.web.Application:
    return tornado.web.Application(
        [
            (r"/page\.html", StaticFile, {"body": PAGE_HTML.read_bytes(), "content_type": "text/html; charset=utf-8"}),
            (r"/socket\.io\.js", StaticFile, {"body": CLIENT_JS.read_bytes(), "content_type": "text/javascript"}),
            (r"/favicon\.ico", NoContent),
            Room.routes("socket.io"),
        ],
        **settings,
    )


def main() -> None:
    ready_file, tag, redis_url = sys.argv[1:]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format=f"{tag} %(name)s %(levelname)s %(message)s")

    async def serve() -> None:
        app = make_app(socket_io_worker_tag=tag, socket_io_redis_url=redis_url)
        # flash_policy_port=0: two processes on one machine cannot both take the Flash policy port
        # (843); a real deployment serves it from one process, or disables flashsocket.
        server = SocketIOServer(app, port=0, address="127.0.0.1", flash_policy_port=0, xheaders=True)
        # SocketIOServer starts the application's Redis relay. Report ready only once it is
        # subscribed, so that no broadcast of the test is published before this process listens.
        relay = registry_for(app).relay
        assert relay is not None
        await asyncio.wait_for(relay.connected.wait(), 10)
        partial = Path(ready_file + ".partial")
        partial.write_text(str(server.port))
        partial.rename(ready_file)  # the test never reads half a port number
        await asyncio.Event().wait()

    asyncio.run(serve())
