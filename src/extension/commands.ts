/**
 * Command factories: each takes the `Ctx` and returns the handler registered in `extension.ts`. Handlers accept
 * optional arguments so the explorer/editor menus (which pass a Uri) and tests (which pass options to skip the
 * prompts) drive the same code as the command palette. They return their result, or undefined when the user
 * cancelled or the input was refused.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import {
  inferTask,
  parseJsonlText,
  readRegularFileAsync,
  MAX_JSONL_BYTES,
  type Example,
  type RowProblem,
  type TaskInfo,
} from '../engine/light';
import { DOWNLOADABLE, downloadBackbone, downloadDir, isBackboneDir, resolveBackbone } from './backbone';
import type { Ctx, TrainingCurve } from './ctx';
import { siblingDevFile, splitRows, writeRows } from './datasets';
import { EngineCancelledError, EngineError, evalArgs, exportArgs, trainArgs } from './engineProcess';
import {
  defaultTaskName,
  formatBytes,
  formatMetrics,
  formatSeconds,
  formatTrainedBy,
  memoryPath,
  readMemoryInfo,
  validateTaskName,
  type MemoryInfo,
} from './memoryFiles';
import { BenchmarkPanel } from './benchmarkPanel';
import { parseRoutingReport, routesArgs, spartanLayers, type RoutingView } from './routing';
import { evaluateForPanel, showEvaluation } from './trustCommands';
import type { EvalResult } from '../protocol/results';

export type Cmd = (...args: unknown[]) => unknown;

// ---------------------------------------------------------------- helpers

export function requireTrust(what: string): boolean {
  if (vscode.workspace.isTrusted) return true;
  void vscode.window
    .showWarningMessage(
      `Spartan does not ${what} in an untrusted workspace: it would run its engine on files and settings from this workspace.`,
      'Manage Workspace Trust',
    )
    .then((p) => p && vscode.commands.executeCommand('workbench.trust.manage'));
  return false;
}

export function showEngineError(ctx: Ctx, what: string, e: unknown): void {
  if (e instanceof EngineCancelledError) return;
  const msg = e instanceof Error ? e.message : String(e);
  ctx.log.error(`${what} failed: ${msg}`);
  if (e instanceof EngineError && e.stderrTail) ctx.log.debug(e.stderrTail);
  void vscode.window.showErrorMessage(`Spartan: ${what} failed: ${msg}`, 'Show Log').then((p) => p && ctx.log.show());
}

export function asUri(arg: unknown): vscode.Uri | undefined {
  return arg instanceof vscode.Uri ? arg : undefined;
}

export function asOptions<T extends object>(...args: unknown[]): T {
  for (const a of args) if (a && typeof a === 'object' && !(a instanceof vscode.Uri) && !Array.isArray(a)) return a as T;
  return {} as T;
}

/** Asks for a `.jsonl` file of the workspace; the active editor's file comes first. */
export async function pickJsonl(title: string): Promise<vscode.Uri | undefined> {
  const files = await vscode.workspace.findFiles('**/*.jsonl', '{**/node_modules/**,**/.git/**,**/.spartan/**}', 2000);
  const active = vscode.window.activeTextEditor?.document.uri;
  if (files.length === 0) {
    const open = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters: { 'JSON Lines': ['jsonl'] } });
    return open?.[0];
  }
  files.sort((a, b) =>
    active && a.toString() === active.toString() ? -1 : active && b.toString() === active.toString() ? 1 : a.fsPath.localeCompare(b.fsPath),
  );
  const items: (vscode.QuickPickItem & { uri?: vscode.Uri })[] = files.map((uri) => ({
    label: path.basename(uri.fsPath),
    description: vscode.workspace.asRelativePath(path.dirname(uri.fsPath), true),
    uri,
  }));
  items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
  const pick = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: 'JSONL file: one {"text": …, "label": …} object per line',
    matchOnDescription: true,
  });
  if (!pick) return undefined;
  if (pick.uri) return pick.uri;
  const open = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters: { 'JSON Lines': ['jsonl'] } });
  return open?.[0];
}

/** The file's text: the editor's buffer when open (saved first if dirty, since the engine reads the disk). */
export async function readForEngine(uri: vscode.Uri): Promise<string> {
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (doc?.isDirty) await doc.save();
  // A file on disk is read as the engine reads it: a bounded regular file (a FIFO or a 5 GB file must not hang or
  // exhaust the extension host).
  if (uri.scheme === 'file') return (await readRegularFileAsync(uri.fsPath, MAX_JSONL_BYTES)).toString('utf8');
  return Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
}

function memoriesFolderOrGlobal(ctx: Ctx): string {
  return ctx.memoriesFolder() ?? path.join(ctx.extCtx.globalStorageUri.fsPath, 'memories');
}

function describeTask(rows: Example[], info: TaskInfo): string {
  const kind =
    info.task === 'regression'
      ? 'regression'
      : `${info.task === 'multilabel' ? 'multi-label classification' : 'classification'}, ${info.labels.length} labels`;
  const pair = info.pair ? ', text pairs' : '';
  let counts = '';
  if (info.task !== 'regression') {
    const shown = info.labels.slice(0, 8).map((l) => `${l} ${info.labelCounts[l]}`);
    counts = ` · ${shown.join(', ')}${info.labels.length > 8 ? `, … (${info.labels.length - 8} more)` : ''}`;
  } else {
    const ys = rows.map((r) => r.label as number);
    counts = ` · targets ${Math.min(...ys).toFixed(2)} … ${Math.max(...ys).toFixed(2)}`;
  }
  return `${rows.length} rows · ${kind}${pair}${counts}`;
}

async function pickMemory(ctx: Ctx, title: string, opts: { activeFirst?: boolean } = {}): Promise<MemoryInfo | undefined> {
  const all = await ctx.listMemories();
  const active = ctx.activeMemoryPath();
  // the active memory first, so that Enter picks it
  if (opts.activeFirst && active) all.sort((a, b) => Number(b.path === active) - Number(a.path === active));
  type Item = vscode.QuickPickItem & { path?: string; browse?: boolean };
  const items: Item[] = all.map((m) =>
    'error' in m
      ? { label: `$(error) ${m.name}`, description: 'unreadable', detail: m.error, path: m.path }
      : {
          label: `${m.path === active ? '$(check) ' : ''}${m.name}`,
          description: `${m.taskType ?? ''}${m.labels.length ? ': ' + m.labels.slice(0, 6).join(', ') : ''}${m.backboneName ? ' · ' + m.backboneName : ''}${m.trainedBy ? ' · ' + formatTrainedBy(m.trainedBy) : ''}`,
          detail: [formatMetrics(m.metrics), formatBytes(m.bytes), m.mtime.toLocaleString()].filter(Boolean).join(' · '),
          path: m.path,
        },
  );
  items.push({ label: '$(folder-opened) Browse…', browse: true, alwaysShow: true });
  const pick = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: all.length
      ? 'Memory (.safetensors)'
      : `No memories in ${ctx.memoriesFolder() ?? 'the memories folder'} yet: browse, or run "Spartan: Fine-tune Memory from JSONL…"`,
    matchOnDescription: true,
  });
  if (!pick) return undefined;
  let p = pick.path;
  if (pick.browse) {
    const open = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters: { 'Spartan memory': ['safetensors'] } });
    p = open?.[0]?.fsPath;
  }
  if (!p) return undefined;
  return readMemoryOrReport(ctx, p);
}

/** The memory file's info, or undefined after telling the user why it cannot be read. */
function readMemoryOrReport(ctx: Ctx, file: string): MemoryInfo | undefined {
  try {
    return ctx.withPair(readMemoryInfo(file));
  } catch (e) {
    void vscode.window.showErrorMessage(`Spartan: ${(e as Error).message}`);
    return undefined;
  }
}

/** The active memory, or the user's pick when there is none; an unreadable memory is reported, not thrown. */
export async function memoryForUse(ctx: Ctx, explicit?: string): Promise<MemoryInfo | undefined> {
  if (explicit) return readMemoryOrReport(ctx, explicit);
  const m = ctx.activeMemory();
  if (m) return m;
  const pick = await vscode.window.showWarningMessage('Spartan has no active memory yet.', 'Fine-tune…', 'Select Memory…');
  if (pick === 'Fine-tune…') void vscode.commands.executeCommand('spartan.fineTune');
  if (pick === 'Select Memory…') {
    const chosen = await pickMemory(ctx, 'Select the active Spartan memory');
    if (chosen) await ctx.setActiveMemory(chosen.path);
    return chosen;
  }
  return undefined;
}

// ---------------------------------------------------------------- fine-tune

export interface FineTuneOptions {
  /** Task (memory) name; asked when absent. */
  task?: string;
  /** Replace an existing memory without asking. */
  replace?: boolean;
  /** true: skip rows with errors; false: refuse a file with errors; absent: ask. Passing `task` skips the summary. */
  skipErrors?: boolean;
}

export interface FineTuneResult {
  memory: string;
  task: string;
  bytes: number;
  seconds: number;
  metrics: Record<string, number>;
  truncated?: number;
}

export function fineTune(ctx: Ctx): Cmd {
  return async (arg?: unknown, second?: unknown): Promise<FineTuneResult | { refused: string; problems?: RowProblem[] } | undefined> => {
    if (!requireTrust('fine-tune')) return undefined;
    if (ctx.training) {
      void vscode.window.showWarningMessage(`Spartan is already fine-tuning '${ctx.training.task}'. Cancel it first.`);
      return undefined;
    }
    const opts = asOptions<FineTuneOptions>(arg, second);
    const uri = asUri(arg) ?? (await pickJsonl('Fine-tune a Spartan memory on…'));
    if (!uri) return undefined;
    if (uri.scheme !== 'file') {
      void vscode.window.showErrorMessage('Spartan trains on files on disk: save the JSONL file first.');
      return undefined;
    }
    const file = uri.fsPath;
    const base = path.basename(file);
    const text = await readForEngine(uri);
    const { rows, problems } = parseJsonlText(text, file);
    const errors = problems.filter((p) => p.severity === 'error');
    const showProblems = async (line?: number) => {
      const doc = await vscode.workspace.openTextDocument(uri);
      const ed = await vscode.window.showTextDocument(doc);
      if (line) {
        const pos = new vscode.Position(line - 1, 0);
        ed.selection = new vscode.Selection(pos, pos);
        ed.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
      }
      await vscode.commands.executeCommand('workbench.actions.view.problems');
    };
    if (rows.length === 0) {
      const first = errors[0];
      const why = first ? ` ${errors.length} lines have errors; the first, line ${first.line}: ${first.message}` : ' The file is empty.';
      ctx.log.error(`${file}: no usable rows.${why}`);
      void vscode.window.showErrorMessage(`${base} has no usable rows.${why}`, 'Show Problems').then((p) => p && showProblems(first?.line));
      return { refused: 'no rows', problems };
    }
    let info: TaskInfo;
    try {
      info = inferTask(rows, base);
    } catch (e) {
      void vscode.window.showErrorMessage(`Spartan: ${(e as Error).message}`);
      return { refused: (e as Error).message, problems };
    }
    const summary = describeTask(rows, info);
    ctx.log.info(`${file}: ${summary}; ${errors.length} rows rejected`);
    for (const p of errors.slice(0, 50)) ctx.log.info(`  rejected line ${p.line}: ${p.message}`);

    if (errors.length > 0 && opts.skipErrors === false) {
      void vscode.window
        .showErrorMessage(
          `${base} has ${errors.length} rows with errors (first: line ${errors[0].line}: ${errors[0].message}). Fix them or choose to skip them.`,
          'Show Problems',
        )
        .then((p) => p && showProblems(errors[0].line));
      return { refused: 'errors', problems };
    }
    // Interactive runs (palette, menus) confirm after showing the summary; callers that pass a task name skip it
    // unless the file has errors and they did not say what to do with them.
    if (opts.task === undefined || (errors.length > 0 && opts.skipErrors === undefined)) {
      type Item = vscode.QuickPickItem & { action: 'go' | 'problems' | 'cancel' | 'line'; line?: number };
      const items: Item[] = [];
      if (errors.length === 0) {
        items.push({ label: `$(play) Fine-tune on ${rows.length} rows`, detail: summary, action: 'go' });
      } else {
        items.push(
          { label: `$(warning) Skip the ${errors.length} rejected rows and fine-tune on ${rows.length}`, detail: summary, action: 'go' },
          { label: '$(list-flat) Show the problems', action: 'problems' },
        );
      }
      items.push({ label: '$(close) Cancel', action: 'cancel' });
      if (errors.length > 0) {
        items.push({ label: `Rejected rows (${errors.length})`, kind: vscode.QuickPickItemKind.Separator, action: 'cancel' });
        for (const p of errors.slice(0, 100))
          items.push({ label: `$(error) line ${p.line}`, description: p.message, action: 'line', line: p.line });
      }
      const pick = await vscode.window.showQuickPick(items, {
        title: `Fine-tune on ${base}: ${summary}${errors.length ? ` · ${errors.length} rows rejected` : ''}`,
        placeHolder: errors.length ? `${errors.length} rows have errors and cannot be used` : 'Start fine-tuning?',
      });
      if (!pick || pick.action === 'cancel') return undefined;
      if (pick.action === 'problems' || pick.action === 'line') {
        await showProblems(pick.line ?? errors[0]?.line);
        return undefined;
      }
    }

    const folder = memoriesFolderOrGlobal(ctx);
    const task =
      opts.task ??
      (await vscode.window.showInputBox({
        title: 'Name of the task',
        prompt: `The memory is saved as ${path.join(vscode.workspace.asRelativePath(folder), '<name>.safetensors')}`,
        value: defaultTaskName(file),
        validateInput: validateTaskName,
      }));
    if (task === undefined) return undefined;
    const bad = validateTaskName(task);
    if (bad) {
      void vscode.window.showErrorMessage(`Spartan: task name "${task}": ${bad}`);
      return undefined;
    }
    const out = memoryPath(folder, task.trim());
    if (fs.existsSync(out) && !opts.replace) {
      let detail = `${out} is replaced when the new training finishes; it stays as it is if you cancel.`;
      try {
        const old = readMemoryInfo(out);
        detail = `The current one (${[formatMetrics(old.metrics), old.mtime.toLocaleString()].filter(Boolean).join(', ')}) is replaced when the new training finishes; it stays as it is if you cancel.`;
      } catch {
        /* keep the generic text */
      }
      const ok = await vscode.window.showWarningMessage(`A memory named '${task}' exists. Replace it?`, { modal: true, detail }, 'Replace');
      if (ok !== 'Replace') return undefined;
    }
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;

    // data files for the CLI: the accepted rows only, and a dev file (sibling, or a held-out share)
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-train-'));
    try {
      const settings = ctx.config.training;
      let trainFile = file;
      let devFile = siblingDevFile(file);
      /** When the dev rows are a held-out share in a temp file: their lines in `file`, for the panel. */
      let devLines: number[] | undefined;
      let trainRows = rows;
      if (devFile) {
        ctx.log.info(`dev file: ${devFile}`);
        if (errors.length) trainFile = writeRows(text, rows, tmp, 'train.jsonl');
      } else if (settings.devShare > 0 && rows.length >= 2) {
        const split = splitRows(rows, settings.devShare, settings.seed, info.task === 'regression');
        trainRows = split.train;
        trainFile = writeRows(text, split.train, tmp, 'train.jsonl');
        devFile = writeRows(text, split.dev, tmp, 'dev.jsonl');
        devLines = split.dev.map((r) => r.line);
        ctx.log.info(
          `dev: ${split.dev.length} rows held out (${Math.round(settings.devShare * 100)} %, seed ${settings.seed}); training on ${split.train.length}`,
        );
      } else if (errors.length) {
        trainFile = writeRows(text, rows, tmp, 'train.jsonl');
      }
      const args = trainArgs({ backbone, data: trainFile, out, dev: devFile, ...ctx.config.trainOptions() });
      const result = await runTraining(ctx, task, out, args, trainRows.length);
      if (!result) return undefined;
      await ctx.rememberPair(out, info.pair);
      await ctx.setActiveMemory(out);
      // The confusion matrix and reliability diagram of the new memory on its dev rows, for the panel.
      if (devFile) await evaluateForPanel(ctx, backbone, out, task, devFile, devLines ? file : devFile, devLines);
      const parts = [formatMetrics(result.metrics), formatBytes(result.bytes), formatSeconds(result.seconds)].filter(Boolean);
      const trunc = result.truncated ? ` ${result.truncated} examples were cut to ${settings.maxLength} tokens.` : '';
      ctx.log.info(`memory '${task}' saved to ${out}: ${parts.join(' · ')}.${trunc}`);
      void vscode.window
        .showInformationMessage(`Memory '${task}' saved: ${parts.join(' · ')}.${trunc}`, 'Classify Selection', 'Show Log')
        .then((p) => (p === 'Show Log' ? ctx.log.show() : p && vscode.commands.executeCommand('spartan.classifySelection')));
      return { ...result, task };
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  };
}

async function runTraining(
  ctx: Ctx,
  task: string,
  out: string,
  args: string[],
  examples: number,
): Promise<Omit<FineTuneResult, 'task'> | undefined> {
  const abort = new AbortController();
  ctx.training = { task, abort };
  await vscode.commands.executeCommand('setContext', 'spartan.training', true);
  const curve: TrainingCurve = { task, memory: out, startedAt: new Date().toISOString(), steps: [], evals: [] };
  try {
    return await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Fine-tuning '${task}'`, cancellable: true },
      async (progress, token) => {
        token.onCancellationRequested(() => abort.abort());
        progress.report({ message: `starting on ${examples} examples…` });
        let steps = 0;
        let lastStep = 0;
        let lastLogged = 0;
        let lastEval = '';
        try {
          const r = await ctx.runCommand('train', args, {
            signal: abort.signal,
            onEvent: (e) => {
              if (e.event === 'start') {
                steps = e.steps;
                curve.totalSteps = steps;
                ctx.log.info(`training: ${e.examples} examples, ${e.epochs} epochs, ${steps} steps`);
              } else if (e.event === 'step') {
                const { step, loss } = e;
                if (e.steps) steps = e.steps;
                if (Number.isFinite(step) && Number.isFinite(loss)) curve.steps.push([step, loss]);
                const inc = steps ? (100 * (step - lastStep)) / steps : undefined;
                lastStep = step;
                progress.report({
                  increment: inc,
                  message: `step ${step}/${steps || '?'} · loss ${Number.isFinite(loss) ? loss.toFixed(4) : '?'}${lastEval}`,
                });
                if (step === 1 || step === steps || step - lastLogged >= Math.max(1, Math.floor(steps / 50))) {
                  lastLogged = step;
                  ctx.log.info(`step ${step}/${steps} loss ${Number.isFinite(loss) ? loss.toFixed(4) : loss} lr ${e.lr.toPrecision(3)}`);
                } else ctx.log.trace(`step ${step}/${steps} loss ${loss}`);
              } else if (e.event === 'eval') {
                const { metrics } = e;
                curve.evals.push({ step: lastStep, epoch: e.epoch, metrics });
                lastEval = ` · dev ${formatMetrics(metrics)}`;
                ctx.log.info(`epoch ${e.epoch} dev: ${formatMetrics(metrics)}`);
                progress.report({ message: `epoch ${e.epoch} · dev ${formatMetrics(metrics)}` });
              } else if (e.event !== 'done') {
                ctx.log.debug(`event ${JSON.stringify(e)}`);
              }
            },
          });
          curve.seconds = r.seconds;
          await ctx.addCurve(curve);
          const res = r.result;
          return { memory: res.memory, bytes: res.bytes, seconds: res.seconds, metrics: res.metrics, truncated: res.truncated };
        } catch (e) {
          if (e instanceof EngineCancelledError) {
            ctx.log.info(`fine-tuning '${task}' cancelled${fs.existsSync(out) ? '; the previous memory is unchanged' : ''}`);
            void vscode.window.showInformationMessage(
              `Fine-tuning '${task}' cancelled.${fs.existsSync(out) ? ' The previous memory is unchanged.' : ''}`,
            );
            return undefined;
          }
          showEngineError(ctx, `fine-tuning '${task}'`, e);
          return undefined;
        }
      },
    );
  } finally {
    ctx.training = undefined;
    await vscode.commands.executeCommand('setContext', 'spartan.training', false);
  }
}

export function cancelFineTune(ctx: Ctx): Cmd {
  return () => {
    if (!ctx.training) {
      void vscode.window.showInformationMessage('Spartan is not fine-tuning anything.');
      return false;
    }
    ctx.log.info(`cancelling fine-tuning '${ctx.training.task}'`);
    ctx.training.abort.abort();
    return true;
  };
}

// ---------------------------------------------------------------- classify

export interface ClassifyOptions {
  text?: string;
  textPair?: string;
  memory?: string;
  /** Do not show the notification (tests). */
  quiet?: boolean;
}

export type ClassifyResult =
  | { label: string; probabilities: Record<string, number> }
  | { labels: string[]; probabilities: Record<string, number> }
  | { score: number };

export function classifySelection(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<(ClassifyResult & { seconds: number; memory: string }) | undefined> => {
    if (!requireTrust('classify')) return undefined;
    const opts = asOptions<ClassifyOptions>(arg);
    let text = opts.text;
    if (text === undefined) {
      const ed = vscode.window.activeTextEditor;
      if (!ed) {
        void vscode.window.showInformationMessage('Select some text in an editor to classify it.');
        return undefined;
      }
      text = ed.selection.isEmpty ? ed.document.lineAt(ed.selection.active.line).text : ed.document.getText(ed.selection);
    }
    text = text.trim();
    if (!text) {
      void vscode.window.showInformationMessage('Select some text to classify.');
      return undefined;
    }
    const mem = await memoryForUse(ctx, opts.memory);
    if (!mem) return undefined;
    let pair = opts.textPair;
    if (mem.pair && pair === undefined) {
      pair = await vscode.window.showInputBox({
        title: `'${mem.name}' classifies text pairs`,
        prompt: 'Second text of the pair',
        placeHolder: 'text_pair',
      });
      if (pair === undefined) return undefined;
    }
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: `Spartan: classifying with '${mem.name}'…` },
        () => ctx.classify<ClassifyResult>(backbone, mem.path, text, pair),
      );
      const res = r.result;
      const short = text.length > 60 ? text.slice(0, 57) + '…' : text;
      let msg: string;
      if ('score' in res && typeof res.score === 'number') {
        msg = `${mem.name}: score ${res.score.toFixed(3)}`;
      } else if ('labels' in res && Array.isArray(res.labels)) {
        // Multi-label: the labels above their thresholds, then every label's probability.
        const probs = Object.entries(res.probabilities ?? {})
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([l, p]) => `${l} ${(100 * p).toFixed(1)} %`);
        msg = `${mem.name}: ${res.labels.length ? res.labels.join(', ') : 'no label'} · ${probs.join(' · ')}`;
      } else if ('label' in res) {
        const probs = Object.entries(res.probabilities ?? {}).sort((a, b) => b[1] - a[1]);
        const top = res.probabilities?.[res.label];
        const rest = probs
          .filter(([l]) => l !== res.label)
          .slice(0, 4)
          .map(([l, p]) => `${l} ${(100 * p).toFixed(1)} %`);
        msg = `${mem.name}: ${res.label}${top !== undefined ? ` (${(100 * top).toFixed(1)} %)` : ''}${rest.length ? ' · ' + rest.join(' · ') : ''}`;
      } else {
        msg = `${mem.name}: ${JSON.stringify(res)}`;
      }
      ctx.log.info(`classify "${short}" → ${msg} (${r.seconds.toFixed(2)} s)`);
      if (!opts.quiet) void vscode.window.showInformationMessage(msg);
      return { ...res, seconds: r.seconds, memory: mem.path };
    } catch (e) {
      showEngineError(ctx, 'classification', e);
      return undefined;
    }
  };
}

// ---------------------------------------------------------------- select memory

export function selectMemory(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<string | undefined> => {
    if (typeof arg === 'string' || arg instanceof vscode.Uri) {
      const p = typeof arg === 'string' ? arg : arg.fsPath;
      try {
        readMemoryInfo(p);
      } catch (e) {
        void vscode.window.showErrorMessage(`Spartan: ${(e as Error).message}`);
        return undefined;
      }
      await ctx.setActiveMemory(p);
      return p;
    }
    const m = await pickMemory(ctx, 'Select the active Spartan memory');
    if (!m) return undefined;
    await ctx.setActiveMemory(m.path);
    ctx.log.info(`active memory: ${m.path}`);
    return m.path;
  };
}

// ---------------------------------------------------------------- evaluate

export function evaluate(ctx: Ctx): Cmd {
  return async (arg?: unknown, second?: unknown): Promise<EvalResult | undefined> => {
    if (!requireTrust('evaluate')) return undefined;
    const opts = asOptions<{ memory?: string }>(arg, second);
    const uri = asUri(arg) ?? (await pickJsonl('Evaluate the active Spartan memory on…'));
    if (!uri) return undefined;
    if (uri.scheme !== 'file') {
      void vscode.window.showErrorMessage('Spartan evaluates files on disk: save the JSONL file first.');
      return undefined;
    }
    const mem = await memoryForUse(ctx, opts.memory);
    if (!mem) return undefined;
    await readForEngine(uri);
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;
    const base = path.basename(uri.fsPath);
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Evaluating '${mem.name}' on ${base}`, cancellable: true },
        (_progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return ctx.runCommand('eval', evalArgs(backbone, mem.path, uri.fsPath, ctx.config.threads || undefined), {
            signal: abort.signal,
          });
        },
      );
      const msg = `'${mem.name}' on ${base}: ${formatMetrics(r.result) || JSON.stringify(r.result)} (${formatSeconds(r.seconds)})`;
      ctx.log.info(`evaluation ${msg}`);
      showEvaluation(ctx, mem.name, uri.fsPath, r.result, msg);
      return r.result;
    } catch (e) {
      showEngineError(ctx, 'evaluation', e);
      return undefined;
    }
  };
}

// ---------------------------------------------------------------- export

export function exportModel(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<{ onnx: string; bytes: number } | undefined> => {
    if (!requireTrust('export models')) return undefined;
    const opts = asOptions<{ memory?: string; out?: string }>(arg);
    const memPath = opts.memory ?? (arg instanceof vscode.Uri && arg.fsPath.endsWith('.safetensors') ? arg.fsPath : undefined);
    const mem = memPath ? ctx.withPair(readMemoryInfo(memPath)) : await pickMemory(ctx, 'Export which memory as an ONNX task model?');
    if (!mem) return undefined;
    let out = opts.out;
    if (!out) {
      const ws = vscode.workspace.workspaceFolders?.[0]?.uri;
      const def = ws
        ? vscode.Uri.joinPath(ws, '.spartan', 'exports', `${mem.name}.onnx`)
        : vscode.Uri.file(path.join(os.homedir(), `${mem.name}.onnx`));
      const pick = await vscode.window.showSaveDialog({
        title: `Export '${mem.name}' as ONNX`,
        defaultUri: def,
        filters: { ONNX: ['onnx'] },
      });
      out = pick?.fsPath;
    }
    if (!out) return undefined;
    fs.mkdirSync(path.dirname(out), { recursive: true });
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Exporting '${mem.name}' to ONNX` },
        () => ctx.runCommand('export', exportArgs(backbone, mem.path, out)),
      );
      const { bytes } = r.result;
      ctx.log.info(`exported ${mem.path} to ${out} (${formatBytes(bytes)})`);
      void vscode.window
        .showInformationMessage(`Exported '${mem.name}' to ${vscode.workspace.asRelativePath(out)} (${formatBytes(bytes)}).`, 'Reveal')
        .then((p) => p && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out)));
      return { onnx: out, bytes };
    } catch (e) {
      showEngineError(ctx, 'export', e);
      return undefined;
    }
  };
}

// ---------------------------------------------------------------- backbone download

export function downloadBackboneCmd(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<string | undefined> => {
    const names = Object.keys(DOWNLOADABLE);
    const name =
      typeof arg === 'string'
        ? arg
        : names.length === 1
          ? names[0]
          : await vscode.window.showQuickPick(names, { title: 'Download which backbone?' });
    if (!name || !DOWNLOADABLE[name]) return undefined;
    const dir = downloadDir(ctx, name);
    if (isBackboneDir(dir)) {
      void vscode.window.showInformationMessage(`Backbone ${name} is already downloaded (${dir}).`);
      return dir;
    }
    const ok = await vscode.window.showInformationMessage(
      `Download the ${name} backbone (${DOWNLOADABLE[name].approxSize}) from huggingface.co?`,
      { modal: true, detail: `It is stored in ${dir}. Nothing else is sent or collected.` },
      'Download',
    );
    if (ok !== 'Download') return undefined;
    return (await downloadBackbone(ctx, name)) ? dir : undefined;
  };
}

// ---------------------------------------------------------------- benchmark

/** Reads a `spartan bench --json` report (an object with `rows`, or a bare array of rows) and shows it in the panel. */
export async function loadBenchReport(ctx: Ctx, file: string): Promise<boolean> {
  let report: unknown;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    void vscode.window.showErrorMessage(`Spartan: ${file} is not a JSON benchmark report: ${(e as Error).message}`);
    return false;
  }
  if (Array.isArray(report)) report = { rows: report };
  const rows = (report as { rows?: unknown }).rows;
  if (!report || typeof report !== 'object' || !Array.isArray(rows)) {
    void vscode.window.showErrorMessage(`Spartan: ${file} has no "rows" array; write one with \`spartan bench --json > report.json\`.`);
    return false;
  }
  await ctx.setBenchReport({ ranAt: fs.statSync(file).mtime.toISOString(), ...report, source: file });
  ctx.log.info(`benchmark report loaded from ${file} (${rows.length} rows)`);
  return true;
}

export function showBenchmark(ctx: Ctx): Cmd {
  return async (arg?: unknown) => {
    const opts = asOptions<{ report?: string }>(arg);
    const report = opts.report ?? (arg instanceof vscode.Uri && arg.fsPath.endsWith('.json') ? arg.fsPath : undefined);
    if (report) await loadBenchReport(ctx, report);
    BenchmarkPanel.show(ctx);
    return true;
  };
}

export function runBenchmark(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<unknown> => {
    if (!requireTrust('run benchmarks')) return undefined;
    let mode = asOptions<{ mode?: 'quick' | 'full' }>(arg).mode;
    if (!mode) {
      const pick = await vscode.window.showQuickPick(
        [
          {
            label: '$(zap) Quick check',
            description: 'seconds',
            detail: 'Embedded backbone, this machine only, SPARTAN against the plain head, batch 8 × 64 tokens, one repetition.',
            mode: 'quick' as const,
          },
          {
            label: '$(dashboard) Paper setting',
            description: 'several minutes',
            detail:
              'roberta-base-sized backbone (synthetic weights, nothing downloaded), Raspberry Pi 4, iPhone 11 and this machine profiles, SPARTAN, adapters and the plain head, batch 32 × 128 tokens.',
            mode: 'full' as const,
          },
        ],
        { title: 'Spartan benchmark', placeHolder: 'Which benchmark?' },
      );
      if (!pick) return undefined;
      mode = pick.mode;
    }
    const threads = ctx.config.threads ? ['--threads', String(ctx.config.threads)] : [];
    const args =
      mode === 'quick'
        ? [
            'bench',
            '--backbone',
            ctx.embeddedBackbone,
            '--profiles',
            'host',
            '--methods',
            'spartan,head',
            '--quick',
            '--batch',
            '8',
            '--seq',
            '64',
            ...threads,
          ]
        : ['bench', ...threads];
    BenchmarkPanel.show(ctx);
    try {
      const r = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: mode === 'quick' ? 'Spartan benchmark (quick)' : 'Spartan benchmark',
          cancellable: true,
        },
        (progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return ctx.runCommand('bench', args, {
            signal: abort.signal,
            onEvent: (e) => {
              const what = [e.stage, e.profile, e.method, e.phase, e.rep !== undefined ? `rep ${e.rep}/${e.reps ?? '?'}` : '']
                .filter((x) => x !== undefined && x !== '')
                .join(' · ');
              if (what) progress.report({ message: what });
            },
          });
        },
      );
      await ctx.setBenchReport({ ranAt: new Date().toISOString(), ...r.result });
      const rows = r.result.rows.length;
      ctx.log.info(`benchmark (${mode}) finished in ${formatSeconds(r.seconds)}: ${rows} rows`);
      return r.result;
    } catch (e) {
      if (e instanceof EngineCancelledError) void vscode.window.showInformationMessage('Benchmark cancelled.');
      else showEngineError(ctx, 'benchmark', e);
      return undefined;
    }
  };
}

// ---------------------------------------------------------------- parent routing

export interface ShowRoutingOptions {
  /** Memory file; asked when absent (the active memory is offered first). */
  memory?: string;
  /** Labelled JSONL file; asked when absent. */
  data?: string;
  /** Encoder layer (0-based); asked when absent, the last layer offered first. */
  layer?: number;
}

/** Asks for a layer among `layers`, the last one selected. */
async function pickLayer(title: string, layers: number[]): Promise<number | undefined> {
  const last = layers[layers.length - 1];
  const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { layer: number }>();
  qp.title = title;
  qp.placeholder = `Encoder layer (0 … ${last})`;
  qp.items = layers.map((l) => ({
    label: `Layer ${l}`,
    description: l === last ? 'last layer' : l === 0 ? 'first layer' : undefined,
    layer: l,
  }));
  qp.activeItems = qp.items.filter((i) => i.layer === last);
  return new Promise((resolve) => {
    let picked: number | undefined;
    qp.onDidAccept(() => {
      picked = qp.selectedItems[0]?.layer ?? qp.activeItems[0]?.layer;
      qp.hide();
    });
    qp.onDidHide(() => {
      qp.dispose();
      resolve(picked);
    });
    qp.show();
  });
}

/**
 * Parent specialisation (the paper's Figure 2): runs `spartan routes` on a memory, a labelled file and a layer,
 * and draws the labels × parents heat map in the benchmark panel.
 */
export function showRouting(ctx: Ctx): Cmd {
  return async (arg?: unknown, second?: unknown): Promise<RoutingView | undefined> => {
    if (!requireTrust('analyse parent routing')) return undefined;
    const opts = asOptions<ShowRoutingOptions>(arg, second);
    let mem: MemoryInfo | undefined;
    try {
      const explicit = opts.memory ?? (arg instanceof vscode.Uri && arg.fsPath.endsWith('.safetensors') ? arg.fsPath : undefined);
      mem = explicit
        ? ctx.withPair(readMemoryInfo(explicit))
        : await pickMemory(ctx, 'Parent routing: which memory?', { activeFirst: true });
    } catch (e) {
      void vscode.window.showErrorMessage(`Spartan: ${(e as Error).message}`);
      return undefined;
    }
    if (!mem) return undefined;
    const method = mem.metadata.method ?? (mem.hyperparameters?.method as string | undefined);
    let layers: number[] = [];
    try {
      layers = spartanLayers(mem.path);
    } catch (e) {
      void vscode.window.showErrorMessage(`Spartan: ${(e as Error).message}`);
      return undefined;
    }
    if ((method && method !== 'spartan') || layers.length === 0) {
      void vscode.window.showErrorMessage(
        `Spartan: '${mem.name}' is ${method ? `a "${method}" memory` : 'not a SPARTAN memory'}; parent routing needs a SPARTAN memory.`,
      );
      return undefined;
    }
    const uriArg = asUri(arg);
    const uri = opts.data
      ? vscode.Uri.file(opts.data)
      : uriArg && uriArg.fsPath.endsWith('.jsonl')
        ? uriArg
        : await pickJsonl(`Parent routing of '${mem.name}' on which labelled file?`);
    if (!uri) return undefined;
    if (uri.scheme !== 'file') {
      void vscode.window.showErrorMessage('Spartan analyses files on disk: save the JSONL file first.');
      return undefined;
    }
    let layer = opts.layer;
    if (layer === undefined) {
      layer =
        layers.length === 1
          ? layers[0]
          : await pickLayer(`Parent routing of '${mem.name}' on ${path.basename(uri.fsPath)}: which layer?`, layers);
      if (layer === undefined) return undefined;
    }
    if (!layers.includes(layer)) {
      void vscode.window.showErrorMessage(
        `Spartan: '${mem.name}' has no layer ${layer}: its SPARTAN layers are ${layers[0]} … ${layers[layers.length - 1]}.`,
      );
      return undefined;
    }
    await readForEngine(uri);
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;
    const base = path.basename(uri.fsPath);
    try {
      const r = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `Parent routing of '${mem.name}' at layer ${layer} on ${base}`,
          cancellable: true,
        },
        (_progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          return ctx.runCommand('routes', routesArgs(backbone, mem.path, uri.fsPath, layer, ctx.config.threads || undefined), {
            signal: abort.signal,
          });
        },
      );
      const report = parseRoutingReport(r.result);
      const view: RoutingView = {
        ...report,
        memory: mem.path,
        memoryName: mem.name,
        data: uri.fsPath,
        dataName: base,
        ranAt: new Date().toISOString(),
      };
      const total = report.tokens.reduce((a, b) => a + b, 0);
      ctx.log.info(
        `parent routing of '${mem.name}' at layer ${report.layer} on ${base}: ${report.labels.length} labels, ${total} tokens, top-${report.topK} of ${report.parents} parents (${formatSeconds(r.seconds)})`,
      );
      await ctx.setRouting(view);
      BenchmarkPanel.show(ctx, 'routing');
      return view;
    } catch (e) {
      showEngineError(ctx, 'parent routing', e);
      return undefined;
    }
  };
}
