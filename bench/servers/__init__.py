"""One small server script per contestant; each serves an echo and a fan-out endpoint.

Every script is run as ``python -m bench.servers.<name> [--port N]``, binds
127.0.0.1, prints ``LISTENING <port>`` on stdout once it accepts connections,
and runs until SIGTERM or SIGINT.  The endpoints:

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
