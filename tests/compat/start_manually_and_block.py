"""The 2010 "Starting Manually" recipe next to the blocking ``SocketIOServer(application)``.

start_manually_2010.py runs the recipe verbatim (a ``FlashPolicyServer`` and an ``HTTPServer``,
then ``IOLoop.instance().start()``). A Tornado user who also has an application for
``SocketIOServer`` keeps those first lines and lets the blocking call run the IOLoop instead of
starting it by hand: both applications must then be served. Ports are free ones on 127.0.0.1;
the program prints those it binds itself, and the Socket.IO server logs its own.
"""

import logging

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

import tornad_io
from tornad_io import SocketIOHandler, SocketIOServer


class EchoHandler(SocketIOHandler):
    def on_message(self, message):
        self.send("[echo] %s" % message)  # noqa: UP031  (2010 style)


class ChatHandler(SocketIOHandler):
    def on_message(self, message):
        self.send("[chat] %s" % message)  # noqa: UP031


application = tornado.web.Application([EchoHandler.routes("socket.io/*")])
chat_application = tornado.web.Application([ChatHandler.routes("socket.io/*")])

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    # The recipe, on free ports (http_server.listen(port) is bind_sockets + add_sockets).
    flash_policy = tornad_io.websocket.flash.FlashPolicyServer(port=0, address="127.0.0.1")
    http_server = tornado.httpserver.HTTPServer(application)
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    http_server.add_sockets(sockets)
    print("manual policy server on port %d" % flash_policy.port, flush=True)  # noqa: UP031
    print("manual application on port %d" % sockets[0].getsockname()[1], flush=True)  # noqa: UP031
    # Instead of tornado.ioloop.IOLoop.instance().start():
    SocketIOServer(chat_application, port=0, address="127.0.0.1", flash_policy_port=0)
    print("SocketIOServer returned", flush=True)
