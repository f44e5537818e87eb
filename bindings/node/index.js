'use strict';
// letta-app-server: the Node SDK for the Letta Code App Server v2 websocket protocol.

module.exports = require('./lib/client');
