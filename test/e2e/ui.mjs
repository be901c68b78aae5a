// UI end-to-end tests of Spartan in a real VS Code (code-server + chromium + playwright-core), driving the
// command palette, quick picks, input boxes and dialogs like a user, with the REAL engine and the embedded backbone.
// Every flow runs in the light and the dark theme and leaves screenshots in test-results/screenshots/.
//   node test/e2e/ui.mjs [--themes light,dark] [--port 18090]
// Prints one line per flow and a final "N passed, M failed"; writes test-results/e2e-ui.json; exit 1 on failure.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { REPO, NODE24, ENTRY, scratchDir, makeWorkspace, userSettings, startCodeServer, launchBrowser, workbenchUrl } from './harness.mjs';

const { values: a } = parseArgs({
  options: {
    themes: { type: 'string', default: 'light,dark' },
    port: { type: 'string', default: process.env.E2E_UI_PORT || '18090' },
    // test an installed VSIX instead of the development folder (no smoke-test driver: real toasts)
    vsix: { type: 'string' },
  },
});
const THEMES = {
  light: 'Default Light Modern',
  dark: 'Default Dark Modern',
  'hc-dark': 'Default High Contrast',
  'hc-light': 'Default High Contrast Light',
};
const SHOTS = path.join(REPO, 'test-results', 'screenshots');
fs.mkdirSync(SHOTS, { recursive: true });
const t0 = Date.now();
const el = () => ((Date.now() - t0) / 1000).toFixed(1) + 's';
const sha = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const results = [];
// E2E_UI_FLOWS=<regex>: run only the flows whose names match (for iterating on a few; later flows need the fine-tune's memory)
const ONLY = process.env.E2E_UI_FLOWS ? new RegExp(process.env.E2E_UI_FLOWS) : null;

async function runCommand(page, title) {
  for (let attempt = 1; ; attempt++) {
    await page.keyboard.press('F1');
    await page.waitForSelector('.quick-input-widget input', { state: 'visible', timeout: 30000 });
    await page.keyboard.type(title);
    try {
      await page.waitForSelector(`.quick-input-list .monaco-list-row[aria-label*="${title}"]`, { timeout: 3000 });
      break;
    } catch (e) {
      if (attempt >= 40) throw e;
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1000);
    }
  }
  await page.keyboard.press('Enter');
}

async function quickPickTitled(page, text, timeout = 30000) {
  await page.locator('.quick-input-widget .quick-input-title', { hasText: text }).first().waitFor({ state: 'visible', timeout });
}

async function pickRow(page, labelStart) {
  const row = page.locator('.quick-input-widget .quick-input-list .monaco-list-row', { hasText: labelStart }).first();
  await row.waitFor({ state: 'visible', timeout: 30000 });
  await row.click();
}

async function showNotifications(page) {
  if (await page.locator('.notifications-center.visible').count()) return;
  await page
    .locator('.statusbar-item .codicon-bell, .statusbar-item .codicon-bell-dot, .statusbar-item .codicon-bell-slash')
    .first()
    .click();
  await page.locator('.notifications-center.visible').waitFor({ timeout: 10000 });
}

async function clearNotifications(page) {
  await page.keyboard.press('Escape');
  await showNotifications(page).catch(() => {});
  const clear = page.locator('.notifications-center-header .action-label[aria-label*="Clear All"]:not(.disabled)').first();
  if (await clear.isVisible().catch(() => false)) await clear.click({ timeout: 3000 }).catch(() => {});
  await page.waitForTimeout(200);
  if (await page.locator('.notifications-center.visible').count()) {
    await page
      .locator('.statusbar-item .codicon-bell, .statusbar-item .codicon-bell-dot, .statusbar-item .codicon-bell-slash')
      .first()
      .click({ timeout: 3000 })
      .catch(() => {});
  }
}

async function waitNotification(page, text, timeout = 120000) {
  // The smoke-test driver suppresses toasts, and the notification centre hides itself when its last notification
  // (e.g. a finished progress) goes away, so keep reopening it until the message is there.
  const msg = page.locator('.notification-list-item-message', { hasText: text }).first();
  const end = Date.now() + timeout;
  for (;;) {
    await showNotifications(page).catch(() => {});
    if (await msg.isVisible().catch(() => false)) return msg.innerText();
    if (Date.now() > end) throw new Error(`no notification matching ${text}`);
    await page.waitForTimeout(250);
  }
}

async function openFile(page, name) {
  await page.keyboard.press('Control+P');
  await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
  await page.keyboard.type(name);
  await page.locator(`.quick-input-list .monaco-list-row[aria-label*="${name}"]`).first().waitFor({ timeout: 30000 });
  await page.keyboard.press('Enter');
  await page
    .locator(`.tabs-container .tab.active[aria-label*="${name}"], .tabs-container .tab.active[data-resource-name="${name}"]`)
    .first()
    .waitFor({ timeout: 30000 });
  await page.waitForTimeout(300);
}

async function runTheme(theme) {
  const scratch = scratchDir(`ui-${theme}-`);
  // 10 epochs of the 16 fixture rows (one step each): enough for the embedded backbone to get the obvious examples
  // of sample.txt right, which the classify flow asserts.
  const ws = makeWorkspace(scratch, { 'spartan.training.epochs': 10 });
  userSettings(scratch, { 'workbench.colorTheme': THEMES[theme] });
  const mem = path.join(ws, '.spartan/memories/sentiment.safetensors');
  if (a.vsix) {
    const out = execFileSync(
      NODE24,
      [
        ENTRY,
        '--install-extension',
        path.resolve(a.vsix),
        '--extensions-dir',
        path.join(scratch, 'extensions'),
        '--user-data-dir',
        path.join(scratch, 'user'),
      ],
      {
        env: {
          ...process.env,
          HOME: path.join(scratch, 'home'),
          XDG_CONFIG_HOME: path.join(scratch, 'xdg-config'),
          XDG_DATA_HOME: path.join(scratch, 'xdg-data'),
        },
        encoding: 'utf8',
      },
    );
    console.log('  ' + out.trim().split('\n').pop());
  }
  const cs = await startCodeServer(scratch, a.port, { smokeDriver: !a.vsix });
  const browser = await launchBrowser(scratch);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30000);
  const tag = a.vsix ? `vsix-${theme}` : theme;
  const shot = async (name) => {
    await page.mouse.move(640, 760); // no hover tooltips in the pictures
    await page.waitForTimeout(150);
    await page.screenshot({ path: path.join(SHOTS, `${name}-${tag}.png`) });
  };
  const flow = async (name, fn) => {
    if (ONLY && !ONLY.test(name)) return;
    const s = Date.now();
    try {
      await fn();
      results.push({ name: `${name} [${theme}]`, ok: true, ms: Date.now() - s });
      console.log(`  ✔ ${name} [${theme}] (${Date.now() - s} ms)`);
    } catch (e) {
      results.push({ name: `${name} [${theme}]`, ok: false, ms: Date.now() - s, error: String((e && e.stack) || e) });
      console.log(`  ✘ ${name} [${theme}]: ${String((e && e.message) || e).split('\n')[0]}`);
      await page.screenshot({ path: path.join(SHOTS, `FAILED-${name}-${tag}.png`) }).catch(() => {});
      await page.keyboard.press('Escape').catch(() => {});
      await page.keyboard.press('Escape').catch(() => {});
    }
  };
  try {
    const remote = (p) => `vscode-remote://${cs.host}${path.resolve(p)}`;
    await page.goto(
      a.vsix
        ? `http://${cs.host}/?folder=${encodeURIComponent(ws)}`
        : workbenchUrl(cs.host, ws, [
            ['extensionDevelopmentPath', remote(REPO)],
            ['skipWelcome', 'true'],
          ]),
    );
    await page.waitForSelector('.monaco-workbench .statusbar', { timeout: 120000 });
    console.log(`workbench up (${theme}) ${el()}`);

    await flow('fine-tune from the palette', async () => {
      const s = Date.now();
      await runCommand(page, 'Spartan: Fine-tune Memory from JSONL');
      await pickRow(page, 'train.jsonl');
      await quickPickTitled(page, 'Fine-tune on train.jsonl');
      await page.waitForTimeout(300);
      await shot('finetune-summary');
      await page.keyboard.press('Enter');
      await quickPickTitled(page, 'Name of the task');
      await page.keyboard.press('Control+A');
      await page.keyboard.type('sentiment');
      await page.keyboard.press('Enter');
      const text = await waitNotification(page, "Memory 'sentiment' saved");
      console.log(`    notification: ${JSON.stringify(text)} (${Date.now() - s} ms from the palette)`);
      if (!fs.existsSync(mem)) throw new Error('memory file not written: ' + mem);
      await page.locator('.statusbar-item', { hasText: 'sentiment' }).first().waitFor({ timeout: 10000 });
      await page.waitForTimeout(500);
      await shot('finetune-done');
      // the log: live loss and dev metrics
      await clearNotifications(page);
      await runCommand(page, 'Output: Show Output Channels');
      await pickRow(page, 'Spartan');
      await page.locator('.part.panel .view-lines', { hasText: 'dev:' }).first().waitFor({ timeout: 15000 });
      await page.waitForTimeout(500);
      await shot('finetune-log');
      await page.keyboard.press('Control+J');
    });

    await flow('classify a selection', async () => {
      await clearNotifications(page);
      await openFile(page, 'sample.txt');
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('Shift+End');
      await runCommand(page, 'Spartan: Classify Selection');
      // sample.txt line 1: "a wonderful, moving film with a lovely story"
      const text = await waitNotification(page, /sentiment: pos/);
      console.log(`    notification: ${JSON.stringify(text)}`);
      await page.waitForTimeout(500);
      await shot('classify');
      // line 2: "terrible acting and a painfully dull plot"
      await clearNotifications(page);
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Home');
      await page.keyboard.press('Shift+End');
      await runCommand(page, 'Spartan: Classify Selection');
      const text2 = await waitNotification(page, /sentiment: neg/);
      console.log(`    notification: ${JSON.stringify(text2)}`);
      await page.waitForTimeout(500);
      await shot('classify-negative');
    });

    await flow('status bar item opens the memory picker', async () => {
      await clearNotifications(page);
      await page.locator('.statusbar-item', { hasText: 'sentiment' }).first().click();
      await quickPickTitled(page, 'Select the active Spartan memory');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'classification: neg, pos' }).first().waitFor();
      await shot('select-memory');
      await page.keyboard.press('Enter');
      await page.locator('.statusbar-item', { hasText: 'sentiment' }).first().waitFor();
    });

    await flow('explorer and editor context menus', async () => {
      await clearNotifications(page);
      // editor: select the first line of sample.txt and right-click on it
      await page.locator('.monaco-editor .view-lines').first().click();
      await page.keyboard.press('Control+Home');
      await page.keyboard.press('Shift+End');
      await page
        .locator('.monaco-editor .view-lines .view-line')
        .first()
        .click({ button: 'right', position: { x: 60, y: 8 } });
      const menuItem = (t) => page.locator('.context-view .monaco-menu .action-item', { hasText: t }).first();
      await menuItem('Classify Selection').waitFor({ timeout: 10000 });
      await shot('editor-menu');
      await page.keyboard.press('Escape');
      await page.locator('.explorer-folders-view .monaco-list-row', { hasText: 'train.jsonl' }).first().click({ button: 'right' });
      await menuItem('Fine-tune Memory from JSONL').waitFor({ timeout: 10000 });
      await menuItem('Evaluate Memory on File').waitFor({ timeout: 10000 });
      await shot('explorer-menu');
      await page.keyboard.press('Escape');
    });

    await flow('malformed JSONL: diagnostics and no memory', async () => {
      await clearNotifications(page);
      await openFile(page, 'bad.jsonl');
      await page.keyboard.press('Control+Shift+M');
      const rows = page.locator('.markers-panel .monaco-list-row');
      await rows.nth(3).waitFor({ timeout: 15000 }); // the file row + 3 problems
      const problems = await page.locator('.markers-panel .monaco-list-row').allInnerTexts();
      if (!problems.join('\n').includes('[Ln 2')) throw new Error('no problem at line 2: ' + problems.join(' | '));
      await shot('diagnostics');
      await runCommand(page, 'Spartan: Fine-tune Memory from JSONL');
      await pickRow(page, 'bad.jsonl');
      await quickPickTitled(page, 'Fine-tune on bad.jsonl');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'Skip the 3 rejected rows' }).first().waitFor();
      await page.waitForTimeout(300);
      await shot('finetune-refused');
      await page.keyboard.press('Escape');
      await page.waitForTimeout(1000);
      if (fs.existsSync(path.join(ws, '.spartan/memories/bad.safetensors'))) throw new Error('a memory was written for bad.jsonl');
      await page.keyboard.press('Control+J'); // hide the panel again
    });

    await flow('cancel a fine-tune; the previous memory survives', async () => {
      await clearNotifications(page);
      if (!fs.existsSync(mem)) throw new Error('no previous memory (the fine-tune flow failed)');
      const before = sha(mem);
      await runCommand(page, 'Spartan: Fine-tune Memory from JSONL');
      await pickRow(page, 'long.jsonl');
      await quickPickTitled(page, 'Fine-tune on long.jsonl');
      await page.keyboard.press('Enter');
      await quickPickTitled(page, 'Name of the task');
      await page.keyboard.press('Control+A');
      await page.keyboard.type('sentiment');
      await page.keyboard.press('Enter');
      const replace = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Replace' }).first();
      await replace.waitFor({ timeout: 15000 });
      await shot('finetune-replace');
      await replace.click();
      await waitNotification(page, /step \d+\/\d+/, 60000);
      await shot('finetune-progress');
      await runCommand(page, 'Spartan: Cancel Fine-tune');
      await waitNotification(page, 'cancelled', 30000);
      await page.waitForTimeout(500);
      await shot('finetune-cancelled');
      if (sha(mem) !== before) throw new Error('the previous memory changed');
      const left = fs.readdirSync(path.dirname(mem)).filter((f) => f !== 'sentiment.safetensors');
      if (left.length) throw new Error('left behind: ' + left.join(', '));
    });

    await flow('offline: downloading roberta-base fails with a clear message offering the embedded backbone', async () => {
      await clearNotifications(page);
      await runCommand(page, 'Spartan: Download Backbone');
      const dl = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Download' }).first();
      await dl.waitFor({ timeout: 15000 });
      await shot('download-confirm');
      await dl.click();
      const text = await waitNotification(page, 'Could not download roberta-base', 60000);
      if (!/embedded/i.test(text)) throw new Error('the message does not offer the embedded backbone: ' + text);
      await page.locator('.notification-list-item .monaco-button', { hasText: 'Use Embedded Backbone' }).first().waitFor({ timeout: 5000 });
      await page.waitForTimeout(300);
      await shot('download-offline');
    });

    await flow('benchmark panel shows a chart', async () => {
      await clearNotifications(page);
      await runCommand(page, 'Spartan: Show Benchmark Panel');
      const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
      await frame.locator('svg.chart path.series').first().waitFor({ timeout: 30000 });
      await page.waitForTimeout(800);
      await shot('benchmark');
      // run the quick benchmark with the real engine from the panel's button
      await frame.locator('#run-bench').click();
      await quickPickTitled(page, 'Spartan benchmark');
      await pickRow(page, 'Quick check');
      await frame.locator('svg.bar-chart rect.bar').first().waitFor({ timeout: 120000 });
      await frame.locator('#bench h2').evaluate((e) => e.scrollIntoView({ block: 'start' }));
      await page.waitForTimeout(800);
      await shot('benchmark-throughput');
    });

    await flow('parent routing heat map', async () => {
      await clearNotifications(page);
      await runCommand(page, 'Spartan: Show Parent Routing');
      await quickPickTitled(page, 'Parent routing: which memory?');
      await pickRow(page, 'sentiment');
      await quickPickTitled(page, 'on which labelled file?');
      await pickRow(page, 'train.jsonl');
      await quickPickTitled(page, 'which layer?');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'last layer' }).first().waitFor({ timeout: 10000 });
      await page.keyboard.press('Enter'); // the last layer is preselected
      const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
      await frame.locator('#routing h2', { hasText: 'Parent routing (layer 3)' }).waitFor({ timeout: 120000 });
      await frame.locator('#routing svg.heatmap rect.heat-cell').first().waitFor({ timeout: 30000 });
      const cells = await frame.locator('#routing svg.heatmap rect.heat-cell:not(.legend-cell)').count();
      if (cells !== 2 * 16) throw new Error(`expected 2 labels × 16 parents, drew ${cells} cells`);
      await clearNotifications(page);
      await frame.locator('#routing h2').evaluate((e) => e.scrollIntoView({ block: 'start' }));
      await page.waitForTimeout(800);
      await shot('routing');
      // the toggle switches the map to the mean gate
      await frame.locator('#routing button[data-view="gate"]').click();
      await frame.locator('#routing figcaption', { hasText: 'Mean gate' }).waitFor({ timeout: 10000 });
    });

    // reviews.jsonl: 80 sentiment rows, 8 with a flipped label. The palette runs the audit with the CLI's defaults.
    let suspectLine = 0,
      suspectFix = '',
      suspectCount = 0;
    await flow('find suspect labels: Information diagnostics in the Problems panel', async () => {
      await clearNotifications(page);
      // closes the benchmark panel too: the evaluation flow below then opens it from the message's button
      await runCommand(page, 'View: Close All Editors');
      await openFile(page, 'reviews.jsonl');
      // the JSONL editor's context menu holds both commands
      await page
        .locator('.monaco-editor .view-lines .view-line')
        .first()
        .click({ button: 'right', position: { x: 60, y: 8 } });
      const menuItem = (t) => page.locator('.context-view .monaco-menu .action-item', { hasText: t }).first();
      await menuItem('Find Suspect Labels').waitFor({ timeout: 10000 });
      await menuItem('Suggest Rows to Label').waitFor({ timeout: 10000 });
      await shot('jsonl-editor-menu');
      await page.keyboard.press('Escape');
      const s = Date.now();
      await runCommand(page, 'Spartan: Find Suspect Labels');
      const text = await waitNotification(page, /suspect label\(s\) in reviews\.jsonl/, 300000);
      console.log(`    notification: ${JSON.stringify(text)} (${Date.now() - s} ms)`);
      const shown = Number(/(\d+) suspect label/.exec(text)[1]);
      if (!(shown >= 1)) throw new Error('no suspect label shown: ' + text);
      await clearNotifications(page);
      await page.keyboard.press('Control+Shift+M');
      const rows = page.locator('.markers-panel .monaco-list-row', { hasText: 'the memory says' });
      await rows.first().waitFor({ timeout: 15000 });
      const first = await rows.first().innerText();
      const m = /labelled `(\w+)`, the memory says `(\w+)` \((0\.\d\d|1\.00)\)[\s\S]*?\[Ln (\d+), Col (\d+)\]/.exec(first);
      if (!m) throw new Error('unexpected problem row: ' + JSON.stringify(first));
      if (m[1] === m[2]) throw new Error('suspect row whose label is the prediction: ' + first);
      if (
        !(await page
          .locator(
            '.markers-panel .monaco-list-row .codicon-info, .markers-panel .monaco-list-row .codicon-marker-info, .markers-panel .monaco-list-row .severity-info',
          )
          .count())
      ) {
        throw new Error('the suspect rows are not shown as Information');
      }
      suspectLine = Number(m[4]);
      suspectCount = shown;
      suspectFix = m[2];
      await page.waitForTimeout(500);
      await shot('suspect-labels');
      // where the cursor must be for the quick fix: the label value
      await page.keyboard.press('Control+G');
      await page.waitForSelector('.quick-input-widget input', { state: 'visible' });
      await page.keyboard.type(`${m[4]}:${m[5]}`);
      await page.keyboard.press('Enter');
    });

    await flow('quick fix of a suspect label (Ctrl+.) rewrites the label', async () => {
      if (!suspectLine) throw new Error('no suspect label (the previous flow failed)');
      const file = path.join(ws, 'reviews.jsonl');
      const before = fs.readFileSync(file, 'utf8').split('\n')[suspectLine - 1];
      // the Problems list is virtual (only the visible rows exist), so look for the fixed line's row, the first one
      const fixedRow = () =>
        page
          .locator('.markers-panel .monaco-list-row', { hasText: `[Ln ${suspectLine}, Col` })
          .filter({ hasText: 'the memory says' })
          .count();
      if (!(await fixedRow())) throw new Error(`no suspect row at line ${suspectLine} in the Problems panel`);
      await page.keyboard.press('Control+.');
      const item = page.locator('.action-widget .monaco-list-row', { hasText: `Change label to "${suspectFix}"` }).first();
      await item.waitFor({ timeout: 15000 });
      await page.waitForTimeout(300);
      await shot('suspect-quick-fix');
      await page.keyboard.press('Enter');
      await page.waitForTimeout(500);
      await page.keyboard.press('Control+S');
      const end = Date.now() + 10000; // the save reaches the disk
      let after;
      for (;;) {
        after = fs.readFileSync(file, 'utf8').split('\n')[suspectLine - 1];
        if (after !== before || Date.now() > end) break;
        await page.waitForTimeout(200);
      }
      const row = JSON.parse(after);
      if (row.label !== suspectFix || row.text !== JSON.parse(before).text)
        throw new Error(`line ${suspectLine} is ${after}, was ${before}`);
      const end2 = Date.now() + 10000;
      while (await fixedRow()) {
        if (Date.now() > end2) throw new Error(`the diagnostic of line ${suspectLine} is still in the Problems panel`);
        await page.waitForTimeout(200);
      }
      if ((await page.locator('.markers-panel .monaco-list-row', { hasText: 'the memory says' }).count()) === 0 && suspectCount > 1)
        throw new Error('the other suspect rows went too');
      await page.waitForTimeout(300);
      await shot('suspect-fixed');
      await page.keyboard.press('Control+J');
    });

    await flow('suggest rows to label: the quick pick reveals each row', async () => {
      await clearNotifications(page);
      await openFile(page, 'unlabelled.jsonl');
      await runCommand(page, 'Spartan: Suggest Rows to Label');
      await quickPickTitled(page, 'Rows to label next in unlabelled.jsonl (most uncertain first)', 120000);
      const items = page.locator('.quick-input-widget .quick-input-list .monaco-list-row');
      await items.first().waitFor();
      const n = await items.count();
      if (n < 2 || n > 12) throw new Error(`expected up to the 12 rows of unlabelled.jsonl, listed ${n}`);
      if (!/predicted (neg|pos) · margin 0\.\d{3} · entropy 0\.\d{3}/.test(await items.first().innerText()))
        throw new Error('unexpected item: ' + (await items.first().innerText()));
      await page.keyboard.press('ArrowDown');
      await page.waitForTimeout(300);
      const focused = await page.locator('.quick-input-widget .quick-input-list .monaco-list-row.focused').first().innerText();
      const line = Number(/^(\d+):/.exec(focused.trim())[1]);
      await page
        .locator('.statusbar-item', { hasText: `Ln ${line},` })
        .first()
        .waitFor({ timeout: 10000 });
      await shot('suggest-rows');
      await page.keyboard.press('Escape');
    });

    await flow('evaluate: confusion matrix and reliability diagram; a cell lists its rows, a row opens at its line', async () => {
      await clearNotifications(page);
      // The panel is opened first, so the evaluation draws into it (clicking the result message's "Show Confusion
      // Matrix" button in the notification centre proved flaky in the dark theme; the integration suite covers
      // that an open panel redraws its evaluation).
      await runCommand(page, 'Spartan: Show Benchmark Panel');
      await page.locator('iframe.webview.ready').first().waitFor({ timeout: 30000 });
      // Let the revealed panel finish drawing and take focus before the quick pick opens: in the installed VSIX, after
      // the earlier flows, a late focus change closed the quick pick under the click (twice in a row on 2026-12-04).
      await page.frameLocator('iframe.webview.ready').frameLocator('#active-frame').locator('h1').first().waitFor({ timeout: 30000 });
      await page.waitForTimeout(1000);
      await runCommand(page, 'Spartan: Evaluate Memory on File');
      await quickPickTitled(page, 'Evaluate the active Spartan memory on');
      await pickRow(page, 'reviews.jsonl');
      const text = await waitNotification(page, "'sentiment' on reviews.jsonl: ", 120000); // the result, not the progress ("Evaluating …")
      console.log(`    notification: ${JSON.stringify(text)}`);
      await clearNotifications(page);
      const frame = page.frameLocator('iframe.webview.ready').frameLocator('#active-frame');
      await frame.locator('#evaluation svg rect.confusion-cell').first().waitFor({ timeout: 30000 });
      const cells = await frame.locator('#evaluation rect.confusion-cell').count();
      if (cells !== 4) throw new Error(`expected a 2 × 2 confusion matrix, drew ${cells} cells`);
      await frame.locator('#evaluation svg.reliability rect.reliability-bin').first().waitFor({ timeout: 10000 });
      if (!(await frame.locator('#evaluation svg.reliability circle.marker.s1').count())) throw new Error('no uncalibrated markers');
      const legend = await frame.locator('#evaluation figure:has(svg.reliability) .legend').first().innerText();
      if (!/calibrated, T = [\d.]+: ECE 0\.\d{3}/.test(legend) || !/uncalibrated: ECE 0\.\d{3}/.test(legend))
        throw new Error('legend: ' + legend);
      await frame.locator('#evaluation h2').evaluate((e) => e.scrollIntoView({ block: 'start' }));
      await page.waitForTimeout(800);
      await shot('evaluation');
      // the cell with the most errors (off the diagonal), from the counts the cells show
      const titles = await frame.locator('#evaluation rect.confusion-cell title').allTextContents();
      const counts = titles.map((t) => Number(/: (\d+) row/.exec(t)[1]));
      const off = [1, 2].sort((x, y) => counts[y] - counts[x])[0];
      const pick = counts[off] > 0 ? off : counts.indexOf(Math.max(...counts));
      await frame
        .locator('#evaluation rect.confusion-cell')
        .nth(pick)
        .click({ position: { x: 6, y: 6 } });
      const links = frame.locator('#evaluation button.row-link');
      await links.first().waitFor({ timeout: 10000 });
      if ((await links.count()) !== Math.min(counts[pick], 200))
        throw new Error(`listed ${await links.count()} rows, the cell says ${counts[pick]}`);
      await links.first().evaluate((e) => e.scrollIntoView({ block: 'center' }));
      await page.waitForTimeout(500);
      await shot('evaluation-rows');
      const line = Number(await links.first().getAttribute('data-line'));
      await links.first().click();
      await page
        .locator(
          '.tabs-container .tab.active[aria-label*="reviews.jsonl"], .tabs-container .tab.active[data-resource-name="reviews.jsonl"]',
        )
        .first()
        .waitFor({ timeout: 15000 });
      await page
        .locator('.statusbar-item', { hasText: `Ln ${line},` })
        .first()
        .waitFor({ timeout: 10000 });
      await page.waitForTimeout(500);
      await shot('evaluation-open-row');
    });
  } finally {
    await browser.close().catch(() => {});
    await cs.stop();
    if (!process.env.E2E_KEEP) removeScratch(scratch);
  }
}

/** Restricted mode: workspace trust on, folder not trusted. Diagnostics still work; the engine never runs. */
async function runUntrusted(theme) {
  const scratch = scratchDir(`ui-untrusted-`);
  const ws = makeWorkspace(scratch);
  userSettings(scratch, {
    'workbench.colorTheme': THEMES[theme],
    'security.workspace.trust.enabled': true,
    'security.workspace.trust.startupPrompt': 'never',
    'security.workspace.trust.banner': 'always',
  });
  const cs = await startCodeServer(scratch, a.port, { smokeDriver: true, trust: true });
  const browser = await launchBrowser(scratch);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  page.setDefaultTimeout(30000);
  const s = Date.now();
  const name = `untrusted workspace: diagnostics only, no engine [${theme}]`;
  try {
    const remote = (p) => `vscode-remote://${cs.host}${path.resolve(p)}`;
    await page.goto(
      workbenchUrl(cs.host, ws, [
        ['extensionDevelopmentPath', remote(REPO)],
        ['skipWelcome', 'true'],
      ]),
    );
    await page.waitForSelector('.monaco-workbench .statusbar', { timeout: 120000 });
    await openFile(page, 'bad.jsonl');
    await page.keyboard.press('Control+Shift+M');
    await page.locator('.markers-panel .monaco-list-row').nth(3).waitFor({ timeout: 15000 });
    await runCommand(page, 'Spartan: Fine-tune Memory from JSONL');
    const text = await waitNotification(page, 'untrusted workspace', 30000);
    console.log(`    notification: ${JSON.stringify(text)}`);
    await page.waitForTimeout(500);
    await page.screenshot({ path: path.join(SHOTS, `untrusted-${theme}.png`) });
    if (fs.existsSync(path.join(ws, '.spartan'))) throw new Error('the engine wrote into an untrusted workspace');
    results.push({ name, ok: true, ms: Date.now() - s });
    console.log(`  ✔ ${name} (${Date.now() - s} ms)`);
  } catch (e) {
    results.push({ name, ok: false, ms: Date.now() - s, error: String((e && e.stack) || e) });
    console.log(`  ✘ ${name}: ${String((e && e.message) || e).split('\n')[0]}`);
    await page.screenshot({ path: path.join(SHOTS, `FAILED-untrusted-${theme}.png`) }).catch(() => {});
  } finally {
    await browser.close().catch(() => {});
    await cs.stop();
    if (!process.env.E2E_KEEP) removeScratch(scratch);
  }
}

if (!a.vsix && process.env.E2E_UNTRUSTED !== '0') await runUntrusted('light');
for (const theme of a.themes
  .split(',')
  .map((s) => s.trim())
  .filter(Boolean)) {
  try {
    await runTheme(theme);
  } catch (e) {
    results.push({ name: `start VS Code [${theme}]`, ok: false, error: String((e && e.stack) || e) });
    console.log(`  ✘ start VS Code [${theme}]: ${e && e.message}`);
  }
}
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
fs.writeFileSync(
  path.join(REPO, 'test-results', a.vsix ? 'e2e-ui-vsix.json' : 'e2e-ui.json'),
  JSON.stringify({ results, summary: `${passed} passed, ${failed} failed`, seconds: (Date.now() - t0) / 1000 }, null, 2),
);
console.log(`[ui] ${passed} passed, ${failed} failed (${el()})`);
process.exit(failed ? 1 : 0);

// A child of the run (an engine process finishing its last write) can still be filling the scratch folder when it is
// removed: retry, and never fail a flow for a leftover temp folder.
function removeScratch(dir) {
  try {
    fs.rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
  } catch (e) {
    console.log(`  (could not remove ${dir}: ${e.message})`);
  }
}
