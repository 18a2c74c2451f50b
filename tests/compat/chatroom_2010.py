"""A chat room written against the 2010 tornad_io API, as applications of that time were.

Every tornad_io name, setting and call below is used the way the 2010 release's chat-room example
used it; test_chatroom_2010.py runs this file as a program, unchanged, against today's tornad_io.
Run by hand: ``python chatroom_2010.py`` from this folder, then open http://localhost:8888/ (the
page loads jQuery and the Socket.IO client from their 2010 CDN addresses).
"""

import tornado.web  # noqa: I001  (three separate imports, as the 2010 code had them)
from tornad_io import SocketIOHandler
from tornad_io import SocketIOServer

# Everybody in the room: one handler per connected browser.
participants = set()


class IndexHandler(tornado.web.RequestHandler):
    """Serves the chat page, index.html next to this file."""

    def get(self):
        self.render("index.html")


class ChatHandler(SocketIOHandler):
    """One chatter: greeted on arrival, heard by the whole room, missed when gone."""

    def on_open(self, *args, **kwargs):
        self.send("Welcome to the room! Say something.")
        participants.add(self)

    def on_message(self, message):
        for person in participants:
            person.send(message)

    def on_close(self):
        participants.remove(self)
        for person in participants:
            person.send("A user has left the room.")


# The Socket.IO URLs: /socket.io/<transport>/...
chatRoute = ChatHandler.routes("socket.io/*")

application = tornado.web.Application(
    [(r"/", IndexHandler), chatRoute],
    enabled_protocols=["websocket", "flashsocket", "xhr-multipart", "xhr-polling"],
    flash_policy_port=8043,
    flash_policy_file="/etc/lighttpd/flashpolicy.xml",
    socket_io_port=8888,
)

if __name__ == "__main__":
    socketio_server = SocketIOServer(application)
