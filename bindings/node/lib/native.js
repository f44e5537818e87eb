'use strict';
// Loads the native addon built for this platform (`letta-app-server.<platform>.node`, written
// by `napi build --platform`).

const { existsSync, readdirSync } = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');

/** The platform part of the addon's file name, as napi-rs names it. */
function platformSuffix() {
  const { platform, arch } = process;
  if (platform === 'linux') {
    const glibc = process.report?.getReport?.().header?.glibcVersionRuntime;
    return `linux-${arch}-${glibc ? 'gnu' : 'musl'}`;
  }
  if (platform === 'win32') return `win32-${arch}-msvc`;
  return `${platform}-${arch}`;
}

function load() {
  const file = path.join(root, `letta-app-server.${platformSuffix()}.node`);
  if (existsSync(file)) return require(file);
  const built = readdirSync(root).filter((name) => name.endsWith('.node'));
  throw new Error(
    `letta-app-server has no native addon for ${platformSuffix()} (expected ${path.basename(file)}; ` +
      `found ${built.length ? built.join(', ') : 'none'}). Build it with \`npm run build\` in the package.`,
  );
}

module.exports = load();
