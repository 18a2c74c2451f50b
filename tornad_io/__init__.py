"""tornad_io: the Socket.IO server for Tornado, for the 0.6 client and today's socket.io-client alike.

Subclass :class:`SocketIOHandler`, mount it with ``Handler.routes(...)`` and
start with :class:`SocketIOServer` or your own ``HTTPServer``.  The same
routes serve the 2010 client (Socket.IO 0.6) and socket.io-client 3.x/4.x
(Socket.IO v5 over Engine.IO v4).
"""

import tornad_io.websocket.flash  # noqa: F401  (the 2010 path tornad_io.websocket.flash resolves after import)
from tornad_io.registry import Stats, stats
from tornad_io.server import SocketIOServer
from tornad_io.socket_io import SocketIOHandler

__all__ = ["SocketIOHandler", "SocketIOServer", "Stats", "__version__", "stats"]

__version__ = "0.2.0"
