"""One small server script per contestant; each serves an echo and a fan-out endpoint.

Every script is run as ``python -m bench.servers.<name> [--port N]`` (the
other options, ``--listen``, ``--uvloop`` and the script's own, are in
``_common.py``), binds 127.0.0.1, prints ``LISTENING <port>`` on stdout once
it accepts connections, and runs until SIGTERM or SIGINT.  ``tornadio`` and
``tornado_ws`` also answer ``GET /bench-stats`` (the fan-out call times).
The endpoints:

=====================  ============================  ===============================
script                 echo                          fan-out (broadcast scenario)
=====================  ============================  ===============================
``tornadio``           ``/socket.io/websocket``,     ``/fanout/websocket``
                       ``/socket.io/xhr-polling/``
``tornado_ws``         ``/echo``                     ``/fanout``
``tornado_longpoll``   ``/hello``, ``/poll/<id>``,   (none)
                       ``/send/<id>``
``python_socketio``    namespace ``/``               namespace ``/fanout``
=====================  ============================  ===============================
"""
