// The original node server, socket.io 0.6.18, as a benchmark contestant: `node bench/servers/node06.js [--port N]`.
//
// Resource "socket.io" echoes every message to its sender (client.send); resource "fanout" sends every
// message to every other client of that resource (client.broadcast, i.e. Listener.broadcast(message,
// sessionId)).  Transports: websocket (0.6 speaks draft-76 / draft-75 only) and xhr-polling, as the
// tornad_io contestant enables.  Defaults are kept except that heartbeats (unless
// `--heartbeat-interval default` or a number of seconds is given) and the poll duration are
// pushed out of the way (as for the other contestants), the Flash policy server on port 843 is off,
// and logging is off (0.6 logs every connection to stdout).
//
// socket.io comes from bench/node06/node_modules (installed by `make bench-setup`), or from the
// package folder named by NODE06_SOCKET_IO.  Prints `LISTENING <port>` once it listens on 127.0.0.1.
'use strict';

const http = require('http');
const path = require('path');
const { prepareServer } = require('./node06-shim'); // before socket.io is loaded

const PACKAGE = process.env.NODE06_SOCKET_IO || path.join(__dirname, '..', 'node06', 'node_modules', 'socket.io');
const io = require(PACKAGE);

function option(name, fallback) {
  const at = process.argv.indexOf(name);
  return at >= 0 && at + 1 < process.argv.length ? process.argv[at + 1] : fallback;
}

const server = http.createServer(function (request, response) {
  response.writeHead(404, { 'Content-Type': 'text/plain' });
  response.end('not found');
});

// --heartbeat-interval off (the default: 3,600 s, none lands in a measurement), default (0.6.18's own,
// 10 s), or a number of seconds.
const heartbeats = option('--heartbeat-interval', 'off');
const websocketOptions =
  heartbeats === 'default' ? {} : { heartbeatInterval: (heartbeats === 'off' ? 3600 : Number(heartbeats)) * 1000 };

function listen(resource) {
  return io.listen(server, {
    resource: resource,
    transports: ['websocket', 'xhr-polling'],
    flashPolicyServer: false,
    log: false,
    transportOptions: {
      websocket: websocketOptions,
      'xhr-polling': { duration: 600 * 1000 },
    },
  });
}

const echo = listen('socket.io');
echo.on('connection', function (client) {
  client.on('message', function (message) {
    client.send(message);
  });
});

const fanout = listen('fanout');
fanout.on('connection', function (client) {
  client.on('message', function (message) {
    client.broadcast(message);
  });
});

// Two listeners on one server: their 'request' handlers chain (each passes on what is not its
// resource), but each one's 'upgrade' handler destroys every upgrade that is not for its own
// resource.  One dispatcher replaces them and hands each upgrade to the listener it names.
const listeners = [echo, fanout];
server.removeAllListeners('upgrade');
server.on('upgrade', function (request, socket, head) {
  const pathname = request.url.split('?')[0];
  const listener = listeners.find((l) => pathname.startsWith('/' + l.options.resource + '/'));
  if (!listener || !listener.check(request, socket, true, head)) socket.destroy();
});
prepareServer(server); // after the dispatcher: its own 'upgrade' listener goes first

server.listen(Number(option('--port', 0)), '127.0.0.1', 2048, function () {
  process.stdout.write('LISTENING ' + server.address().port + '\n');
});
