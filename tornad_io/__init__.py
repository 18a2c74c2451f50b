"""tornad_io: the Socket.IO 0.6 server for Tornado.

Subclass :class:`SocketIOHandler`, mount it with ``Handler.routes(...)`` and
start with :class:`SocketIOServer` or your own ``HTTPServer``.
"""

import tornad_io.websocket.flash  # noqa: F401  (the 2010 path tornad_io.websocket.flash resolves after import)
from tornad_io.registry import Stats, stats
from tornad_io.server import SocketIOServer
from tornad_io.socket_io import SocketIOHandler

__all__ = ["SocketIOHandler", "SocketIOServer", "Stats", "__version__", "stats"]

__version__ = "0.2.0"
