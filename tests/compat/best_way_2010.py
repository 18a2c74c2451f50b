"""The 2010 README's "Best Way" to start, in a program that also uses the IOLoop for itself.

2010 programs configured ``tornado.ioloop.IOLoop.instance()`` (today an alias of
``IOLoop.current()``) and then blocked in ``SocketIOServer(application)``. Everything set up below
before that call must run while it blocks: a second, plain Tornado application, a
``PeriodicCallback`` and an ``add_callback``. Only the ports are not the 2010 ones: everything
binds a free port on 127.0.0.1, and the program prints the ones it chose itself (the Socket.IO
server's is in the log line "Socket.IO server listening on 127.0.0.1:<port>").

Sending "boom" makes ``on_message`` raise; "busy" keeps it busy for a second (a Ctrl-C then
arrives while a handler runs). tests/test_server.py runs this file as a program.
"""

import logging
import time

import tornado.httpserver
import tornado.ioloop
import tornado.netutil
import tornado.web

from tornad_io import SocketIOHandler, SocketIOServer


class EchoHandler(SocketIOHandler):
    def on_message(self, message):
        if message == "boom":
            raise ValueError("boom from on_message")
        if message == "busy":
            print("busy", flush=True)
            deadline = time.monotonic() + 1
            while time.monotonic() < deadline:
                pass
            print("no longer busy", flush=True)
        self.send(message)

    def on_close(self):
        print("on_close ran", flush=True)


class HelloHandler(tornado.web.RequestHandler):
    def get(self):
        self.write("hello from the other application")


application = tornado.web.Application([EchoHandler.routes("socket.io/*")])
other_application = tornado.web.Application([(r"/", HelloHandler)])

ticks = 0


def tick():
    global ticks
    ticks += 1
    print("tick %d" % ticks, flush=True)  # noqa: UP031  (2010 style)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    io_loop = tornado.ioloop.IOLoop.instance()

    # other_application.listen(port), on a free port: listen() is bind_sockets + add_sockets.
    sockets = tornado.netutil.bind_sockets(0, "127.0.0.1")
    tornado.httpserver.HTTPServer(other_application).add_sockets(sockets)
    print("other application on port %d" % sockets[0].getsockname()[1], flush=True)  # noqa: UP031

    tornado.ioloop.PeriodicCallback(tick, 50).start()
    io_loop.add_callback(lambda: print("add_callback fired", flush=True))

    SocketIOServer(application, port=0, address="127.0.0.1", flash_policy_port=0)
    print("SocketIOServer returned", flush=True)
