// What socket.io 0.6.18 (written for node 0.2/0.4) needs to run on node 20, and nothing more.
//
// Require this module before socket.io.  At load time it puts back two things node 0.4 had:
//   1. process.EventEmitter, which 0.6's Listener and Client inherit from (gone from node since 7);
//   2. crypto hashes digesting a string without an encoding as latin-1 ("binary"), as node 0.4 did
//      (node 20 digests it as UTF-8): 0.6's draft-76 handshake feeds the md5 with the key numbers as
//      strings of characters up to U+00FF, so under UTF-8 every digest with a byte >= 0x80 comes out wrong.
// prepareServer(server) then fixes what node 20's HTTP server does differently from node 0.4's:
//   3. it replaces each socket's setEncoding with one that throws ERR_HTTP_SOCKET_ENCODING, and keeps
//      that replacement after an upgrade; 0.6's websocket transport calls setEncoding on the upgraded
//      socket, so the socket's own override is removed before any 'upgrade' listener sees it;
//   4. it closes idle keep-alive sockets after keepAliveTimeout (5 s) by a 'timeout' event, which 0.6's
//      Client takes for "the client is gone" on every socket that ever carried one of its polls: off.
'use strict';

const crypto = require('crypto');
const events = require('events');

if (!process.EventEmitter) process.EventEmitter = events.EventEmitter;

const Hash = crypto.createHash('md5').constructor;
if (!Hash.prototype.update.node04Strings) {
  const update = Hash.prototype.update;
  const latin1Update = function (data, encoding) {
    if (typeof data === 'string' && encoding === undefined) encoding = 'latin1';
    return update.call(this, data, encoding);
  };
  latin1Update.node04Strings = true;
  Hash.prototype.update = latin1Update;
}

function prepareServer(server) {
  server.prependListener('upgrade', function (request, socket) {
    if (Object.prototype.hasOwnProperty.call(socket, 'setEncoding')) delete socket.setEncoding;
  });
  server.keepAliveTimeout = 0;
  return server;
}

module.exports = { prepareServer };
