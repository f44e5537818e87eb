// letta-app-server, as an ES module: the same exports as the CommonJS entry point.

import client from './lib/client.js';

export const {
  AppServerClient,
  BEARER_SUBPROTOCOL_PREFIX,
  AppServerError,
  createAppServerClient,
  isAppServerInfoResponseMessage,
  resolveAppServerChannelUrl,
  resolveAppServerUrl,
  validate,
} = client;
