/**
 * *Evaluate Memory on File…*: `spartan eval` of a memory on a labelled file; the metrics in a message, the
 * confusion matrix, reliability diagram and per-label scores in the benchmark panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BenchmarkPanel } from '../benchmarkPanel';
import type { Ctx } from '../ctx';
import { setEvaluation } from '../evaluationView';
import { formatMetrics, formatSeconds } from '../memoryFiles';
import { memoryForUse, pickJsonl } from '../pickers';
import { engineTask } from '../taskHost';
import type { EvalResult } from '../../protocol/results';
import { asOptions, asUri, type Cmd } from './args';

/** The button of the evaluation message that opens the panel at its evaluation section. */
export const SHOW_EVALUATION = 'Show Confusion Matrix';

export function evaluate(ctx: Ctx): Cmd {
  return (arg?: unknown, second?: unknown) =>
    engineTask(ctx, { trust: 'evaluate', what: 'evaluation' }, async (task): Promise<EvalResult> => {
      const opts = asOptions<{ memory?: string }>(arg, second);
      const uri = task.onDisk(asUri(arg) ?? (await pickJsonl('Evaluate the active Spartan memory on…')), 'evaluates');
      const mem = task.need(await memoryForUse(ctx, opts.memory));
      await task.read(uri);
      const backbone = await task.backbone();
      const base = path.basename(uri.fsPath);
      const r = await task.run(`Evaluating '${mem.name}' on ${base}`, (signal) =>
        ctx.runCommand('eval', { backbone, memory: mem.path, data: uri.fsPath, threads: ctx.config.threads || undefined }, { signal }),
      );
      const msg = `'${mem.name}' on ${base}: ${formatMetrics(r.result) || JSON.stringify(r.result)} (${formatSeconds(r.seconds)})`;
      ctx.log.info(`evaluation ${msg}`);
      showEvaluation(ctx, mem.name, uri.fsPath, r.result, msg);
      return r.result;
    });
}

/**
 * Keeps an evaluation for the panel and tells the user `message`: an open panel redraws at once; otherwise the
 * message offers to open it (the panel does not steal the editor's place uninvited).
 */
function showEvaluation(ctx: Ctx, memoryName: string, data: string, result: EvalResult, message: string): void {
  setEvaluation(memoryName, data, result);
  if (result.task === 'regression') {
    void vscode.window.showInformationMessage(message);
  } else if (BenchmarkPanel.current) {
    BenchmarkPanel.current.post('evaluation');
    void vscode.window.showInformationMessage(message);
  } else {
    void vscode.window.showInformationMessage(message, SHOW_EVALUATION).then((p) => p && BenchmarkPanel.show(ctx, 'evaluation'));
  }
}
