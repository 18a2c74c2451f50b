"""Ending the blocking ``SocketIOServer(application)`` from inside the program.

``python stop_from_hook.py MODE``:

- ``hook``: the message "stop" makes ``on_message`` call the server's ``stop()``;
- ``ioloop``: the message "stop" makes ``on_message`` call ``IOLoop.instance().stop()``, the 2010
  way to end a program that runs the IOLoop;
- ``thread``: a line "stop" on standard input makes another thread schedule ``stop()`` on the
  IOLoop with ``add_callback``.

The blocking call has not returned while the server runs, so the program keeps the instance when
``start()`` runs. It prints a line from ``on_close`` and one after the call returns; the Socket.IO
server's free port on 127.0.0.1 is in its log line.
"""

import logging
import sys
import threading

import tornado.ioloop
import tornado.web

from tornad_io import SocketIOHandler, SocketIOServer

MODE = sys.argv[1]
server = None


class Server(SocketIOServer):
    def start(self):
        global server
        server = self
        super().start()


class Handler(SocketIOHandler):
    def on_message(self, message):
        if message == "stop" and MODE == "hook":
            server.stop()
        elif message == "stop" and MODE == "ioloop":
            tornado.ioloop.IOLoop.instance().stop()
        else:
            self.send(message)

    def on_close(self):
        print("on_close ran", flush=True)


def stop_when_told(io_loop):
    for line in sys.stdin:
        if line.strip() == "stop":
            io_loop.add_callback(server.stop)
            return


application = tornado.web.Application([Handler.routes("socket.io/*")])

if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    if MODE == "thread":
        threading.Thread(target=stop_when_told, args=(tornado.ioloop.IOLoop.current(),), daemon=True).start()
    Server(application, port=0, address="127.0.0.1", flash_policy_port=0)
    print("SocketIOServer returned", flush=True)
