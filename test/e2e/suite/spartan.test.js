// Integration tests of the Spartan extension in a real VS Code extension host, with the REAL engine
// (dist/cli.js) and the embedded backbone (models/roberta-mini). The workspace is a copy of
// test/e2e/fixtures/workspace whose settings select the embedded backbone, 1 epoch and max length 32.
const assert = require('assert');
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const vscode = require('vscode');

const ID = 'spartan.spartan';
const ws = () => vscode.workspace.workspaceFolders[0].uri.fsPath;
const wsUri = (f) => vscode.Uri.file(path.join(ws(), f));
const memFolder = () => path.join(ws(), '.spartan', 'memories');
const sha = (f) => crypto.createHash('sha256').update(fs.readFileSync(f)).digest('hex');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const timings = () => global.__spartanTimings || {};
async function waitFor(fn, ms = 30000, what = 'condition') {
  const t0 = Date.now();
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(100);
  }
}
function readHeader(file) {
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  return JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
}

let api;

describe('Spartan in a real VS Code', function () {
  it('is not active at start-up, then activates on a command', async () => {
    const ext = vscode.extensions.getExtension(ID);
    assert.ok(ext, `extension ${ID} not found`);
    assert.ok(!ext.packageJSON.activationEvents.includes('*'), 'must not activate on *');
    assert.strictEqual(ext.isActive, false, 'activated before anything asked for it');
    const t0 = Date.now();
    api = await ext.activate();
    timings().activationApiMs = api.activationMs;
    timings().activationWallMs = Date.now() - t0;
    console.log(`[timing] activation ${api.activationMs.toFixed(1)} ms inside activate(), ${Date.now() - t0} ms wall`);
    const cmds = await vscode.commands.getCommands(true);
    for (const c of [
      'spartan.fineTune',
      'spartan.classifySelection',
      'spartan.selectMemory',
      'spartan.evaluate',
      'spartan.showBenchmark',
      'spartan.downloadBackbone',
      'spartan.export',
      'spartan.cancelFineTune',
      'spartan.showRouting',
      'spartan.findSuspectLabels',
      'spartan.suggestRowsToLabel',
    ]) {
      assert.ok(cmds.includes(c), `${c} not registered`);
    }
    // the new commands of issue 11 are in the JSONL editor's and the explorer's context menus
    const menus = ext.packageJSON.contributes.menus;
    for (const c of ['spartan.findSuspectLabels', 'spartan.suggestRowsToLabel']) {
      for (const where of ['editor/context', 'explorer/context']) {
        const item = menus[where].find((m) => m.command === c);
        assert.ok(item && /jsonl/.test(item.when), `${c} not in ${where} for JSONL files: ${JSON.stringify(item)}`);
      }
    }
    assert.ok(fs.existsSync(path.join(ext.extensionPath, 'dist', 'cli.js')), 'dist/cli.js missing: run node esbuild.mjs');
  });

  it('fine-tunes a memory from a JSONL file; the memory file appears and loads', async () => {
    const t0 = Date.now();
    const r = await vscode.commands.executeCommand('spartan.fineTune', wsUri('train.jsonl'), { task: 'sentiment', replace: true });
    timings().fineTuneMs = Date.now() - t0;
    console.log(`[timing] fine-tune to memory ${Date.now() - t0} ms`, JSON.stringify(r));
    assert.ok(r && r.memory, 'no result: ' + JSON.stringify(r));
    const mem = path.join(memFolder(), 'sentiment.safetensors');
    assert.strictEqual(path.resolve(r.memory), mem);
    assert.ok(fs.existsSync(mem));
    const meta = readHeader(mem).__metadata__;
    assert.strictEqual(meta.task, 'classification');
    assert.deepStrictEqual(JSON.parse(meta.labels), ['neg', 'pos']);
    assert.ok(r.metrics && typeof r.metrics === 'object');
    assert.strictEqual(api.activeMemory(), mem);
    timings().memoryBytes = fs.statSync(mem).size;
  });

  it('classifies the selection with the active memory', async () => {
    const doc = await vscode.workspace.openTextDocument(wsUri('sample.txt'));
    const ed = await vscode.window.showTextDocument(doc);
    ed.selection = new vscode.Selection(0, 0, 0, doc.lineAt(0).text.length);
    const t0 = Date.now();
    const r = await vscode.commands.executeCommand('spartan.classifySelection');
    timings().classifyMs = Date.now() - t0;
    console.log(`[timing] classify ${Date.now() - t0} ms`, JSON.stringify(r));
    assert.ok(r && ['neg', 'pos'].includes(r.label), JSON.stringify(r));
    const sum = Object.values(r.probabilities).reduce((a, b) => a + b, 0);
    assert.ok(Math.abs(sum - 1) < 1e-3, `probabilities sum to ${sum}`);
    // the second call goes to the warm `spartan serve` worker
    ed.selection = new vscode.Selection(1, 0, 1, doc.lineAt(1).text.length);
    const t1 = Date.now();
    const r2 = await vscode.commands.executeCommand('spartan.classifySelection');
    timings().classifyWarmMs = Date.now() - t1;
    console.log(`[timing] classify (warm worker) ${Date.now() - t1} ms`, JSON.stringify(r2));
    assert.ok(r2 && ['neg', 'pos'].includes(r2.label), JSON.stringify(r2));
  });

  it('shows diagnostics for a malformed JSONL at the exact lines and refuses to train on it', async () => {
    const uri = wsUri('bad.jsonl');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const diags = await waitFor(
      () => {
        const d = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'spartan');
        return d.length ? d : undefined;
      },
      10000,
      'diagnostics',
    );
    const lines = [...new Set(diags.map((d) => d.range.start.line + 1))].sort((a, b) => a - b);
    assert.deepStrictEqual(lines, [2, 4, 5]);
    assert.ok(diags.every((d) => d.severity === vscode.DiagnosticSeverity.Error));
    const r = await vscode.commands.executeCommand('spartan.fineTune', uri, { task: 'bad', skipErrors: false });
    assert.ok(r && r.refused, JSON.stringify(r));
    assert.ok(!fs.existsSync(path.join(memFolder(), 'bad.safetensors')), 'a memory was written for a file with errors');
    // fixing a line updates the diagnostics while editing
    const ed = vscode.window.activeTextEditor;
    await ed.edit((e) => e.replace(doc.lineAt(1).range, '{"text": "fixed brace", "label": "neg"}'));
    await waitFor(() => !vscode.languages.getDiagnostics(uri).some((d) => d.range.start.line === 1), 5000, 'diagnostic of line 2 to go');
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('cancelling a fine-tune kills the engine and keeps the previous memory intact', async () => {
    const mem = path.join(memFolder(), 'sentiment.safetensors');
    const before = sha(mem);
    let sawStep = false;
    const sub = api.onDidEngineEvent(({ command, event }) => {
      if (command === 'train' && event.event === 'step' && !sawStep) {
        sawStep = true;
        vscode.commands.executeCommand('spartan.cancelFineTune');
      }
    });
    try {
      const t0 = Date.now();
      const r = await vscode.commands.executeCommand('spartan.fineTune', wsUri('long.jsonl'), { task: 'sentiment', replace: true });
      console.log(`[timing] cancel returned after ${Date.now() - t0} ms`);
      assert.strictEqual(r, undefined, 'fine-tune was not cancelled: ' + JSON.stringify(r));
      assert.ok(sawStep, 'no step event seen');
    } finally {
      sub.dispose();
    }
    assert.strictEqual(api.isTraining(), false);
    assert.strictEqual(sha(mem), before, 'the previous memory changed');
    const leftovers = fs.readdirSync(memFolder()).filter((f) => f !== 'sentiment.safetensors');
    assert.deepStrictEqual(leftovers, [], 'temporary files left behind');
  });

  it('evaluates the active memory on a file', async () => {
    const r = await vscode.commands.executeCommand('spartan.evaluate', wsUri('train.dev.jsonl'));
    console.log('[eval]', JSON.stringify(r));
    assert.ok(r && typeof r.accuracy === 'number', JSON.stringify(r));
  });

  it('text pairs: fine-tunes with a held-out dev share and classifies a pair', async () => {
    const cfg = vscode.workspace.getConfiguration('spartan');
    await cfg.update('training.devShare', 0.25, vscode.ConfigurationTarget.Workspace);
    const devEvents = [];
    const sub = api.onDidEngineEvent(({ event }) => {
      if (event.event === 'eval') devEvents.push(event);
    });
    try {
      const r = await vscode.commands.executeCommand('spartan.fineTune', wsUri('pairs.jsonl'), { task: 'paraphrase', replace: true });
      assert.ok(r && r.memory, JSON.stringify(r));
      assert.ok(devEvents.length >= 1, 'no dev evaluation with a held-out share');
      const meta = readHeader(r.memory).__metadata__;
      assert.strictEqual(JSON.parse(meta.hyperparameters).pair, true);
      const c = await vscode.commands.executeCommand('spartan.classifySelection', {
        text: 'the film was great',
        textPair: 'the movie was excellent',
        quiet: true,
      });
      assert.ok(c && ['different', 'same'].includes(c.label), JSON.stringify(c));
    } finally {
      sub.dispose();
      await cfg.update('training.devShare', undefined, vscode.ConfigurationTarget.Workspace);
    }
  });

  it('regression: fine-tunes on numeric labels and classify shows a score', async () => {
    const r = await vscode.commands.executeCommand('spartan.fineTune', wsUri('scores.jsonl'), { task: 'scores', replace: true });
    assert.ok(r && r.memory, JSON.stringify(r));
    assert.strictEqual(readHeader(r.memory).__metadata__.task, 'regression');
    const c = await vscode.commands.executeCommand('spartan.classifySelection', { text: 'a wonderful film', quiet: true });
    assert.ok(c && typeof c.score === 'number' && Number.isFinite(c.score), JSON.stringify(c));
    // back to the sentiment memory for the tests below
    await vscode.commands.executeCommand('spartan.selectMemory', path.join(memFolder(), 'sentiment.safetensors'));
  });

  it('opens the benchmark panel and draws the training curve', async () => {
    await vscode.commands.executeCommand('spartan.showBenchmark');
    const info = await waitFor(
      () => {
        const i = api.benchmarkPanelRender();
        return i && i.charts > 0 ? i : undefined;
      },
      30000,
      'a chart in the panel',
    );
    assert.ok(info.curves >= 1, JSON.stringify(info));
  });

  it('runs the quick benchmark with the real engine and charts it', async () => {
    const t0 = Date.now();
    const r = await vscode.commands.executeCommand('spartan.runBenchmark', { mode: 'quick' });
    console.log(`[timing] quick bench ${Date.now() - t0} ms`);
    assert.ok(r && Array.isArray(r.rows) && r.rows.length >= 2, JSON.stringify(r).slice(0, 500));
    assert.ok(r.rows.every((x) => x.instancesPerMinute > 0 && x.storageBytes > 0));
    const info = await waitFor(
      () => {
        const i = api.benchmarkPanelRender();
        return i && i.benchRows === r.rows.length ? i : undefined;
      },
      30000,
      'the report in the panel',
    );
    assert.ok(info.charts >= 5, JSON.stringify(info));
  });

  it('renders a saved benchmark report as throughput charts', async () => {
    const report = path.join(vscode.extensions.getExtension(ID).extensionPath, 'test/e2e/fixtures/bench-report.json');
    await vscode.commands.executeCommand('spartan.showBenchmark', { report });
    const info = await waitFor(
      () => {
        const i = api.benchmarkPanelRender();
        return i && i.benchRows === 6 ? i : undefined;
      },
      30000,
      'the 6 rows of the saved report in the panel',
    );
    assert.ok(info.charts >= 5, JSON.stringify(info)); // 4 throughput charts + the training curve
  });

  it('selects a memory by path and exports the task model to ONNX', async () => {
    const mem = path.join(memFolder(), 'sentiment.safetensors');
    assert.strictEqual(await vscode.commands.executeCommand('spartan.selectMemory', mem), mem);
    const out = path.join(ws(), '.spartan', 'exports', 'sentiment.onnx');
    const r = await vscode.commands.executeCommand('spartan.export', { memory: mem, out });
    assert.ok(r && fs.existsSync(out) && fs.statSync(out).size > 0, JSON.stringify(r));
  });

  it('shows the parent routing of a freshly trained memory as a heat map in the benchmark panel', async () => {
    const m = await vscode.commands.executeCommand('spartan.fineTune', wsUri('train.jsonl'), { task: 'routing', replace: true });
    assert.ok(m && m.memory, JSON.stringify(m));
    const data = path.join(ws(), 'train.jsonl');
    // a layer the memory does not have is refused before the engine runs
    assert.strictEqual(await vscode.commands.executeCommand('spartan.showRouting', { memory: m.memory, data, layer: 99 }), undefined);
    const t0 = Date.now();
    const r = await vscode.commands.executeCommand('spartan.showRouting', { memory: m.memory, data, layer: 1 });
    console.log(`[timing] parent routing ${Date.now() - t0} ms`);
    assert.ok(r && r.layer === 1, JSON.stringify(r).slice(0, 500));
    assert.deepStrictEqual(r.labels, ['neg', 'pos']);
    assert.strictEqual(r.memoryName, 'routing');
    assert.ok(r.parents >= 1 && r.topK >= 1 && r.topK <= r.parents, JSON.stringify(r).slice(0, 500));
    assert.ok(
      r.tokens.every((t) => t > 0),
      JSON.stringify(r.tokens),
    );
    for (const row of r.counts)
      assert.ok(
        Math.abs(row.reduce((a, b) => a + b, 0) - r.topK) < 1e-6,
        `counts row sums to ${row.reduce((a, b) => a + b, 0)}, not K=${r.topK}`,
      );
    for (const row of r.meanGate)
      assert.ok(Math.abs(row.reduce((a, b) => a + b, 0) - 1) < 1e-3, `meanGate row sums to ${row.reduce((a, b) => a + b, 0)}`);
    const cells = r.labels.length * r.parents;
    const info = await waitFor(
      () => {
        const i = api.benchmarkPanelRender();
        return i && i.routing && i.routing.layer === 1 && i.routing.cells === cells ? i : undefined;
      },
      30000,
      'the routing heat map in the panel',
    );
    assert.deepStrictEqual({ labels: info.routing.labels, parents: info.routing.parents }, { labels: 2, parents: r.parents });
  });

  it('finds suspect labels: Information diagnostics at the label values; the quick fix rewrites the label', async function () {
    this.timeout(300000);
    const uri = wsUri('reviews.jsonl');
    const doc = await vscode.workspace.openTextDocument(uri);
    const t0 = Date.now();
    // 80 sentiment rows, 8 of them with a flipped label (lines 5, 14, 23, 32, 47, 56, 65, 78); small, fast folds
    const r = await vscode.commands.executeCommand('spartan.findSuspectLabels', uri, {
      folds: 4,
      epochs: 20,
      method: 'head',
      lr: 0.01,
      dropout: 0,
    });
    console.log(`[timing] audit ${Date.now() - t0} ms`);
    assert.ok(r && Array.isArray(r.rows), JSON.stringify(r).slice(0, 500));
    assert.strictEqual(r.rows.length, 80, 'every row audited');
    assert.deepStrictEqual(
      [...r.rows.map((x) => x.line)].sort((a, b) => a - b),
      Array.from({ length: 80 }, (_, i) => i + 1),
    );
    for (let i = 1; i < r.rows.length; i++) assert.ok(r.rows[i - 1].p_label <= r.rows[i].p_label, 'rows are not most suspect first');
    const flagged = r.rows.filter((x) => x.issue);
    assert.strictEqual(r.shown, flagged.length);
    assert.ok(r.shown >= 1, 'no suspect label shown');
    const planted = new Set([5, 14, 23, 32, 47, 56, 65, 78]);
    console.log(
      `[audit] ${r.shown} suspect rows, ${flagged.filter((x) => planted.has(x.line)).length} of the 8 planted flips among them; top 8: ${r.rows
        .slice(0, 8)
        .map((x) => x.line)
        .join(',')}`,
    );
    const diags = api.suspectDiagnostics(uri);
    assert.strictEqual(diags.length, r.shown);
    assert.deepStrictEqual(
      diags.map((d) => d.range.start.line + 1).sort((a, b) => a - b),
      flagged.map((x) => x.line).sort((a, b) => a - b),
    );
    for (const d of diags) {
      const row = flagged.find((x) => x.line === d.range.start.line + 1);
      assert.strictEqual(d.severity, vscode.DiagnosticSeverity.Information);
      assert.strictEqual(d.source, 'Spartan');
      assert.strictEqual(d.code, 'spartan.suspectLabel');
      assert.strictEqual(doc.getText(d.range), JSON.stringify(row.label), 'the range is not the label value');
      assert.strictEqual(d.message, `labelled \`${row.label}\`, the memory says \`${row.predicted}\` (${row.p_predicted.toFixed(2)})`);
      assert.notStrictEqual(row.predicted, row.label);
    }
    // the Problems panel sees them too
    await waitFor(
      () => vscode.languages.getDiagnostics(uri).filter((d) => d.code === 'spartan.suspectLabel').length === r.shown,
      10000,
      'suspect diagnostics in the Problems panel',
    );
    // the quick fix of the most suspect flagged row
    const target = diags.find((d) => d.range.start.line + 1 === flagged[0].line);
    const actions = await vscode.commands.executeCommand('vscode.executeCodeActionProvider', uri, target.range);
    const title = `Change label to "${flagged[0].predicted}"`;
    const fix = actions.find((x) => x.title === title);
    assert.ok(fix && fix.edit, `no quick fix "${title}" among ${JSON.stringify(actions.map((x) => x.title))}`);
    assert.ok(await vscode.workspace.applyEdit(fix.edit));
    const line = doc.lineAt(target.range.start.line).text;
    assert.strictEqual(JSON.parse(line).label, flagged[0].predicted, line);
    assert.strictEqual(
      JSON.parse(line).text,
      JSON.parse(fs.readFileSync(uri.fsPath, 'utf8').split('\n')[target.range.start.line]).text,
      'the text changed',
    );
    await waitFor(
      () => !api.suspectDiagnostics(uri).some((d) => d.range.start.line === target.range.start.line),
      5000,
      "the fixed row's diagnostic to go",
    );
    assert.strictEqual(api.suspectDiagnostics(uri).length, r.shown - 1, "other rows' diagnostics went too");
    await vscode.window.showTextDocument(doc);
    await vscode.commands.executeCommand('workbench.action.revertAndCloseActiveEditor');
  });

  it('suggests rows to label: unlabelled rows ranked most uncertain first, the top one selected', async () => {
    const mem = path.join(memFolder(), 'sentiment.safetensors');
    const uri = wsUri('unlabelled.jsonl');
    const r = await vscode.commands.executeCommand('spartan.suggestRowsToLabel', uri, { memory: mem, top: 5, pick: false });
    assert.ok(r && Array.isArray(r.rows), JSON.stringify(r).slice(0, 500));
    assert.deepStrictEqual(
      [...r.rows.map((x) => x.line)].sort((a, b) => a - b),
      Array.from({ length: 12 }, (_, i) => i + 1),
    );
    for (const x of r.rows) {
      assert.ok(['neg', 'pos'].includes(x.predicted), JSON.stringify(x));
      assert.ok(x.margin >= 0 && x.margin <= 1, JSON.stringify(x));
      assert.ok(x.entropy >= 0 && x.entropy <= Math.log(2) + 1e-6, JSON.stringify(x));
    }
    for (let i = 1; i < r.rows.length; i++) assert.ok(r.rows[i - 1].margin <= r.rows[i].margin, 'not most uncertain first');
    const ed = vscode.window.activeTextEditor;
    assert.ok(ed && ed.document.uri.fsPath === uri.fsPath, 'unlabelled.jsonl is not the active editor');
    assert.strictEqual(ed.selection.start.line, r.rows[0].line - 1, 'the most uncertain row is not selected');
    // A file of unlabelled rows is valid input for rank: the Problems panel shows no error for it.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const errors = vscode.languages
      .getDiagnostics(uri)
      .filter((d) => d.source === 'spartan' && d.severity === vscode.DiagnosticSeverity.Error);
    assert.deepStrictEqual(
      errors.map((d) => d.message),
      [],
      'unlabelled rows are errors in the Problems panel',
    );
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
  });

  it('multi-label file: a single-label row is a diagnostic at its line, not a crash; the rest trains a multi-label memory', async () => {
    const uri = wsUri('topics.jsonl');
    const doc = await vscode.workspace.openTextDocument(uri);
    await vscode.window.showTextDocument(doc);
    const diags = await waitFor(
      () => {
        const d = vscode.languages.getDiagnostics(uri).filter((x) => x.source === 'spartan');
        return d.length ? d : undefined;
      },
      10000,
      'diagnostics',
    );
    assert.deepStrictEqual(
      diags.map((d) => d.range.start.line + 1),
      [5],
      JSON.stringify(diags.map((d) => d.message)),
    );
    assert.match(diags[0].message, /single label/);
    assert.strictEqual(diags[0].severity, vscode.DiagnosticSeverity.Error);
    const refused = await vscode.commands.executeCommand('spartan.fineTune', uri, { task: 'topics', skipErrors: false });
    assert.ok(refused && refused.refused, JSON.stringify(refused));
    assert.ok(!fs.existsSync(path.join(memFolder(), 'topics.safetensors')));
    const r = await vscode.commands.executeCommand('spartan.fineTune', uri, { task: 'topics', skipErrors: true, replace: true });
    assert.ok(r && r.memory, JSON.stringify(r));
    const meta = readHeader(r.memory).__metadata__;
    assert.strictEqual(meta.task, 'multilabel');
    assert.deepStrictEqual(JSON.parse(meta.labels), ['business', 'sports', 'tech']);
    await vscode.commands.executeCommand('workbench.action.closeActiveEditor');
    await vscode.commands.executeCommand('spartan.selectMemory', path.join(memFolder(), 'sentiment.safetensors'));
  });

  it('an evaluation with the panel open draws the confusion matrix, reliability diagram and per-label scores', async () => {
    await vscode.commands.executeCommand('spartan.showBenchmark');
    const r = await vscode.commands.executeCommand('spartan.evaluate', wsUri('reviews.jsonl'), {
      memory: path.join(memFolder(), 'sentiment.safetensors'),
    });
    assert.ok(r && r.confusion && r.per_label, JSON.stringify(r).slice(0, 500));
    assert.strictEqual(
      r.confusion.matrix.flat().reduce((a, b) => a + b, 0),
      80,
    );
    const info = await waitFor(
      () => {
        const i = api.benchmarkPanelRender();
        return i && i.evaluation && i.evaluation.confusionCells === 4 ? i : undefined;
      },
      30000,
      'the evaluation in the panel',
    );
    assert.strictEqual(info.evaluation.perLabel, 2, JSON.stringify(info.evaluation));
    assert.ok(info.evaluation.reliabilityBins >= 1, JSON.stringify(info.evaluation));
  });
});
