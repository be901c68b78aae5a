/**
 * *Classify Selection*: the selected text (or the cursor's line) through the active memory, answered by the
 * long-lived `spartan serve` worker (a one-shot `classify` when it cannot run); a text-pair memory asks for the
 * second text.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { memoryForUse } from '../pickers';
import { engineTask } from '../taskHost';
import type { ClassifyResult } from '../../protocol/commands';
import { asOptions, type Cmd } from './args';

export interface ClassifySelectionOptions {
  text?: string;
  textPair?: string;
  memory?: string;
  /** Do not show the notification (tests). */
  quiet?: boolean;
}

export function classifySelection(ctx: Ctx): Cmd {
  return (arg?: unknown) =>
    engineTask(ctx, { trust: 'classify', what: 'classification' }, async (task) => {
      const opts = asOptions<ClassifySelectionOptions>(arg);
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
      const mem = task.need(await memoryForUse(ctx, opts.memory));
      let pair = opts.textPair;
      if (mem.pair && pair === undefined) {
        pair = task.need(
          await vscode.window.showInputBox({
            title: `'${mem.name}' classifies text pairs`,
            prompt: 'Second text of the pair',
            placeHolder: 'text_pair',
          }),
        );
      }
      const backbone = await task.backbone();
      const input = text;
      const r = await task.run(`Spartan: classifying with '${mem.name}'…`, () => ctx.classify(backbone, mem.path, input, pair), {
        cancellable: false,
        location: 'window',
      });
      const msg = describePrediction(mem.name, r.result);
      const short = text.length > 60 ? text.slice(0, 57) + '…' : text;
      ctx.log.info(`classify "${short}" → ${msg} (${r.seconds.toFixed(2)} s)`);
      if (!opts.quiet) void vscode.window.showInformationMessage(msg);
      return { ...r.result, seconds: r.seconds, memory: mem.path };
    });
}

/** `sentiment: pos (93.1 %) · neg 6.9 %`, `topics: sports, business · …`, `sts: score 3.412`. */
function describePrediction(name: string, res: ClassifyResult): string {
  if (typeof res.score === 'number') return `${name}: score ${res.score.toFixed(3)}`;
  if (Array.isArray(res.labels)) {
    // Multi-label: the labels above their thresholds, then every label's probability.
    const probs = Object.entries(res.probabilities ?? {})
      .sort((a, b) => b[1] - a[1])
      .slice(0, 6)
      .map(([l, p]) => `${l} ${(100 * p).toFixed(1)} %`);
    return `${name}: ${res.labels.length ? res.labels.join(', ') : 'no label'} · ${probs.join(' · ')}`;
  }
  if (res.label !== undefined) {
    const label = res.label;
    const probs = Object.entries(res.probabilities ?? {}).sort((a, b) => b[1] - a[1]);
    const top = res.probabilities?.[label];
    const rest = probs
      .filter(([l]) => l !== label)
      .slice(0, 4)
      .map(([l, p]) => `${l} ${(100 * p).toFixed(1)} %`);
    return `${name}: ${label}${top !== undefined ? ` (${(100 * top).toFixed(1)} %)` : ''}${rest.length ? ' · ' + rest.join(' · ') : ''}`;
  }
  return `${name}: ${JSON.stringify(res)}`;
}
