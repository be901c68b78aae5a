#!/usr/bin/env node
// Entry point of the `spartan` CLI: runs the bundle built by `npm run build`.
// Training processes want glibc's malloc tunables set at start-up (see src/engine/runtime/processEnv.ts), so when
// GLIBC_TUNABLES is not in the environment the CLI re-runs itself once with it, forwarding signals and exit status.
// The child is told this process's pid (SPARTAN_PARENT_PID) and stops itself if this process disappears (a SIGKILL
// cannot be forwarded): see src/cli/parentWatch.ts.
const path = require('path');
const cli = path.join(__dirname, '..', 'dist', 'cli.js');
// The one definition of the tunables, bundled from src/engine/runtime/processEnv.ts by `npm run build`.
const { GLIBC_TUNABLES: TUNABLES } = require(path.join(__dirname, '..', 'dist', 'processEnv.js'));
if (process.env.GLIBC_TUNABLES !== undefined || process.platform !== 'linux') {
  require(cli);
} else {
  const { spawn } = require('child_process');
  const child = spawn(process.execPath, [cli, ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: TUNABLES, SPARTAN_PARENT_PID: String(process.pid) },
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (require('os').constants.signals[signal] || 1)));
}
