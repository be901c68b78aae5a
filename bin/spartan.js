#!/usr/bin/env node
// Entry point of the `spartan` CLI: runs the bundle built by `npm run build`.
// Training processes want glibc's malloc tunables set at start-up (src/engine/runtime/processEnv.ts), so when
// GLIBC_TUNABLES is not in the environment the CLI re-runs itself once with it, forwarding signals and exit status;
// the child is told this process's pid and stops itself if this process disappears (a SIGKILL cannot be forwarded).
// Both are `rerunWithTrainingEnv` in src/engine/runtime/childProcess.ts, the helper every self-spawn uses, bundled
// on its own (dist/childProcess.js, no native code) by `npm run build`.
const path = require('path');
const cli = path.join(__dirname, '..', 'dist', 'cli.js');
const { rerunWithTrainingEnv } = require(path.join(__dirname, '..', 'dist', 'childProcess.js'));
if (!rerunWithTrainingEnv(cli)) require(cli);
