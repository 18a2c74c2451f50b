"""The 2010 README's "Starting Manually" recipe, its __main__ block kept exactly as printed there.

Only the application around it is ours (the recipe assumes one); the four lines under __main__ are
the 2010 text, including the deprecated ``IOLoop.instance()``.
"""

import tornado.httpserver
import tornado.ioloop
import tornado.web

import tornad_io
from tornad_io import SocketIOHandler


class EchoHandler(SocketIOHandler):
    def on_message(self, message):
        self.send("[echo] %s" % message)  # noqa: UP031  (2010 style)


application = tornado.web.Application([EchoHandler.routes("socket.io/*")])

if __name__ == "__main__":
    flash_policy = tornad_io.websocket.flash.FlashPolicyServer(port=8043, policy_file="/etc/lighttpd/flashpolicy.xml")
    http_server = tornado.httpserver.HTTPServer(application)
    http_server.listen(8888)
    tornado.ioloop.IOLoop.instance().start()
