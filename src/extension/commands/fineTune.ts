/**
 * *Fine-tune Memory from JSONL…*: checks the file as the engine will (its rejected rows listed, with a summary of
 * the task to confirm), asks for the task name, writes the accepted rows and the dev rows (a sibling
 * `<name>.dev.jsonl`, or the engine's seeded held-out share) for the CLI, runs `spartan train` with a live loss
 * curve, then makes the new memory active and evaluates it on its dev rows for the panel.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { inferTask, parseJsonlText, type Example, type RowProblem, type TaskInfo } from '../../engine/light';
import { BenchmarkPanel } from '../benchmarkPanel';
import type { Ctx, TrainingCurve } from '../ctx';
import { siblingDevFile, splitRows, writeRows } from '../datasets';
import type { EngineTask } from '../engineTask';
import { remapLines, setEvaluation } from '../evaluationView';
import { defaultTaskName, formatBytes, formatMetrics, formatSeconds, memoryPath, readMemoryInfo, validateTaskName } from '../memoryFiles';
import { pickJsonl } from '../pickers';
import { engineTask } from '../taskHost';
import type { TrainOptions } from '../../protocol/commands';
import { asOptions, asUri, type Cmd } from './args';

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

type Refused = { refused: string; problems?: RowProblem[] };

export function fineTune(ctx: Ctx): Cmd {
  return (arg?: unknown, second?: unknown) =>
    engineTask(ctx, { trust: 'fine-tune', what: 'fine-tuning' }, async (task): Promise<FineTuneResult | Refused | undefined> => {
      if (ctx.training) {
        void vscode.window.showWarningMessage(`Spartan is already fine-tuning '${ctx.training.task}'. Cancel it first.`);
        return undefined;
      }
      const opts = asOptions<FineTuneOptions>(arg, second);
      const uri = task.onDisk(asUri(arg) ?? (await pickJsonl('Fine-tune a Spartan memory on…')), 'trains on');
      const text = await task.read(uri);
      const file = uri.fsPath;
      const base = path.basename(file);
      const { rows, problems } = parseJsonlText(text, file);
      const errors = problems.filter((p) => p.severity === 'error');
      const showProblems = (line?: number) => revealProblems(uri, line);
      if (rows.length === 0) {
        const first = errors[0];
        const why = first ? ` ${errors.length} lines have errors; the first, line ${first.line}: ${first.message}` : ' The file is empty.';
        ctx.log.error(`${file}: no usable rows.${why}`);
        void vscode.window
          .showErrorMessage(`${base} has no usable rows.${why}`, 'Show Problems')
          .then((p) => p && showProblems(first?.line));
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
        const pick = await confirmRows(base, rows.length, summary, errors);
        if (!pick || pick.action === 'cancel') return undefined;
        if (pick.action === 'problems' || pick.action === 'line') {
          await showProblems(pick.line ?? errors[0]?.line);
          return undefined;
        }
      }

      const folder = ctx.memoriesFolder() ?? path.join(ctx.extCtx.globalStorageUri.fsPath, 'memories');
      const name = task.need(
        opts.task ??
          (await vscode.window.showInputBox({
            title: 'Name of the task',
            prompt: `The memory is saved as ${path.join(vscode.workspace.asRelativePath(folder), '<name>.safetensors')}`,
            value: defaultTaskName(file),
            validateInput: validateTaskName,
          })),
      );
      const bad = validateTaskName(name);
      if (bad) task.refuse(`Spartan: task name "${name}": ${bad}`);
      const out = memoryPath(folder, name.trim());
      if (fs.existsSync(out) && !opts.replace && !(await confirmReplace(name, out))) return undefined;
      const backbone = await task.backbone();
      task.what = `fine-tuning '${name}'`;
      task.cancelled = () => `Fine-tuning '${name}' cancelled.${fs.existsSync(out) ? ' The previous memory is unchanged.' : ''}`;

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
        const result = await runTraining(ctx, task, name, out, trainRows.length, {
          backbone,
          data: trainFile,
          out,
          dev: devFile,
          ...ctx.config.trainOptions(),
        });
        await ctx.rememberPair(out, info.pair);
        await ctx.setActiveMemory(out);
        // The confusion matrix and reliability diagram of the new memory on its dev rows, for the panel.
        if (devFile) await evaluateForPanel(ctx, backbone, out, name, devFile, devLines ? file : devFile, devLines);
        const parts = [formatMetrics(result.metrics), formatBytes(result.bytes), formatSeconds(result.seconds)].filter(Boolean);
        const trunc = result.truncated ? ` ${result.truncated} examples were cut to ${settings.maxLength} tokens.` : '';
        ctx.log.info(`memory '${name}' saved to ${out}: ${parts.join(' · ')}.${trunc}`);
        void vscode.window
          .showInformationMessage(`Memory '${name}' saved: ${parts.join(' · ')}.${trunc}`, 'Classify Selection', 'Show Log')
          .then((p) => (p === 'Show Log' ? ctx.log.show() : p && vscode.commands.executeCommand('spartan.classifySelection')));
        return { ...result, task: name };
      } finally {
        fs.rmSync(tmp, { recursive: true, force: true });
      }
    });
}

/** Opens the file (at `line`) and the Problems panel. */
async function revealProblems(uri: vscode.Uri, line?: number): Promise<void> {
  const doc = await vscode.workspace.openTextDocument(uri);
  const ed = await vscode.window.showTextDocument(doc);
  if (line) {
    const pos = new vscode.Position(line - 1, 0);
    ed.selection = new vscode.Selection(pos, pos);
    ed.revealRange(new vscode.Range(pos, pos), vscode.TextEditorRevealType.InCenter);
  }
  await vscode.commands.executeCommand('workbench.actions.view.problems');
}

/** `120 rows · classification, 2 labels · neg 60, pos 60`: what the file trains, for the confirmation. */
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

type ConfirmItem = vscode.QuickPickItem & { action: 'go' | 'problems' | 'cancel' | 'line'; line?: number };

/** The summary to confirm, with the rejected rows listed (each opens its line). */
function confirmRows(base: string, rows: number, summary: string, errors: RowProblem[]): Thenable<ConfirmItem | undefined> {
  const items: ConfirmItem[] = [];
  if (errors.length === 0) {
    items.push({ label: `$(play) Fine-tune on ${rows} rows`, detail: summary, action: 'go' });
  } else {
    items.push(
      { label: `$(warning) Skip the ${errors.length} rejected rows and fine-tune on ${rows}`, detail: summary, action: 'go' },
      { label: '$(list-flat) Show the problems', action: 'problems' },
    );
  }
  items.push({ label: '$(close) Cancel', action: 'cancel' });
  if (errors.length > 0) {
    items.push({ label: `Rejected rows (${errors.length})`, kind: vscode.QuickPickItemKind.Separator, action: 'cancel' });
    for (const p of errors.slice(0, 100))
      items.push({ label: `$(error) line ${p.line}`, description: p.message, action: 'line', line: p.line });
  }
  return vscode.window.showQuickPick(items, {
    title: `Fine-tune on ${base}: ${summary}${errors.length ? ` · ${errors.length} rows rejected` : ''}`,
    placeHolder: errors.length ? `${errors.length} rows have errors and cannot be used` : 'Start fine-tuning?',
  });
}

/** Asks before an existing memory is replaced (it is kept if the training is cancelled or fails). */
async function confirmReplace(name: string, out: string): Promise<boolean> {
  let detail = `${out} is replaced when the new training finishes; it stays as it is if you cancel.`;
  try {
    const old = readMemoryInfo(out);
    detail = `The current one (${[formatMetrics(old.metrics), old.mtime.toLocaleString()].filter(Boolean).join(', ')}) is replaced when the new training finishes; it stays as it is if you cancel.`;
  } catch {
    /* keep the generic text */
  }
  const ok = await vscode.window.showWarningMessage(`A memory named '${name}' exists. Replace it?`, { modal: true, detail }, 'Replace');
  return ok === 'Replace';
}

/**
 * `spartan train` under the task's progress notification, cancellable from it and from *Cancel Fine-tune*
 * (`ctx.training`); the loss curve is kept for the panel. Throws as the engine does (the task reports it).
 */
async function runTraining(
  ctx: Ctx,
  task: EngineTask,
  name: string,
  out: string,
  examples: number,
  options: TrainOptions,
): Promise<Omit<FineTuneResult, 'task'>> {
  const abort = new AbortController();
  ctx.training = { task: name, abort };
  await vscode.commands.executeCommand('setContext', 'spartan.training', true);
  const curve: TrainingCurve = { task: name, memory: out, startedAt: new Date().toISOString(), steps: [], evals: [] };
  try {
    return await task.run(`Fine-tuning '${name}'`, async (signal, report) => {
      signal.addEventListener('abort', () => abort.abort(), { once: true });
      report({ message: `starting on ${examples} examples…` });
      let steps = 0;
      let lastStep = 0;
      let lastLogged = 0;
      let lastEval = '';
      const r = await ctx.runCommand('train', options, {
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
            const increment = steps ? (100 * (step - lastStep)) / steps : undefined;
            lastStep = step;
            report({
              increment,
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
            report({ message: `epoch ${e.epoch} · dev ${formatMetrics(metrics)}` });
          }
        },
      });
      curve.seconds = r.seconds;
      await ctx.addCurve(curve);
      const res = r.result;
      return { memory: res.memory, bytes: res.bytes, seconds: res.seconds, metrics: res.metrics, truncated: res.truncated };
    });
  } finally {
    ctx.training = undefined;
    await vscode.commands.executeCommand('setContext', 'spartan.training', false);
  }
}

/**
 * After a fine-tune: evaluates the new memory on its dev rows and shows the result in the benchmark panel.
 * `lineOf` maps the dev file's lines to the source file's when the dev rows were a held-out share written to a
 * temp file. Failures are logged, not shown: the memory was saved and the user was told so.
 */
async function evaluateForPanel(
  ctx: Ctx,
  backbone: string,
  memory: string,
  memoryName: string,
  devFile: string,
  source: string,
  lineOf?: number[],
): Promise<void> {
  try {
    const r = await ctx.runCommand('eval', { backbone, memory, data: devFile, threads: ctx.config.threads || undefined });
    setEvaluation(memoryName, source, lineOf ? remapLines(r.result, lineOf) : r.result);
    BenchmarkPanel.current?.post();
  } catch (e) {
    ctx.log.warn(`evaluation of ${memory} on its dev rows for the panel failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}
