// Runs the extension's integration tests (VS Code's extensionTestsPath mechanism) inside the Node extension host
// of a real VS Code (code-server), driven by Debian chromium via playwright-core. Exit code = the extension host's
// (0 = all passed), 124 on timeout. Adapted from the verified recipe /work/shared/recipes/vscode-e2e.
//   node run-ext-tests.mjs --ext <extensionDevelopmentPath> --tests <extensionTestsPath> [--folder DIR] [--port 18080] [--timeout 900] (seconds for the whole suite; the audit test trains 4 fold memories)
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs, format } from 'node:util';
import { scratchDir, userSettings, startCodeServer, launchBrowser, workbenchUrl } from './harness.mjs';

const { values: a } = parseArgs({
  options: {
    ext: { type: 'string' },
    tests: { type: 'string' },
    folder: { type: 'string' },
    port: { type: 'string', default: process.env.E2E_PORT || '18080' },
    timeout: { type: 'string', default: process.env.E2E_TIMEOUT || '900' },
    shot: { type: 'string' },
  },
});
if (!a.ext || !a.tests) {
  console.error('need --ext and --tests');
  process.exit(2);
}
const t0 = Date.now();
const el = () => ((Date.now() - t0) / 1000).toFixed(1) + 's';
const scratch = scratchDir('ext-');
const folder = path.resolve(a.folder || path.join(scratch, 'workspace'));
fs.mkdirSync(folder, { recursive: true });
userSettings(scratch);

let exitCode = 1,
  browser,
  cs;
try {
  cs = await startCodeServer(scratch, a.port);
  console.log(`[harness] code-server listening after ${el()}`);
  browser = await launchBrowser(scratch);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.on('pageerror', (e) => console.error('[page error]', String(e)));
  const done = new Promise((resolve) => {
    page.exposeFunction('codeAutomationExit', (code) => resolve(code));
  });
  const noise =
    /AgentHost|ChatModelSelection|AccountPolicyGate|authentication provider|ENOTFOUND|Resolving connection|Creating a socket|Resolved connection|grace time|Service Worker|builtin extensions cache|^\s+at /;
  await page.exposeFunction('codeAutomationLog', (type, args) => {
    const line = format(...args);
    if (process.env.VERBOSE || !noise.test(line)) (console[type] || console.log)(line);
  });
  const remote = (p) => `vscode-remote://${cs.host}${path.resolve(p)}`;
  await page.goto(
    workbenchUrl(cs.host, folder, [
      ['extensionDevelopmentPath', remote(a.ext)],
      ['extensionTestsPath', remote(a.tests)],
      ['skipWelcome', 'true'],
    ]),
  );
  const code = await Promise.race([done, new Promise((r) => setTimeout(() => r('timeout'), Number(a.timeout) * 1000))]);
  console.log(`[harness] extension host exited with ${code} after ${el()}`);
  if (a.shot) await page.screenshot({ path: a.shot }).catch(() => {});
  exitCode = code === 'timeout' ? 124 : Number(code);
} catch (e) {
  console.error('[harness] error', e);
} finally {
  if (browser) await browser.close().catch(() => {});
  if (cs) await cs.stop();
  if (!process.env.E2E_KEEP) removeScratch(scratch);
}
console.log(`[harness] exit ${exitCode}, total ${el()}`);
process.exit(exitCode);

// A child of the run (an engine process finishing its last write) can still be filling the scratch folder when it is
// removed: retry, and never fail a flow for a leftover temp folder.
function removeScratch(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  } catch (e) {
    console.log(`  (could not remove ${dir}: ${e.message})`);
  }
}
