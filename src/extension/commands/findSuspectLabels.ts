/**
 * *Find Suspect Labels*: `spartan audit` (k fold memories score every row out of fold); the rows confident
 * learning flags become diagnostics at their labels, with a quick fix (src/extension/suspectLabels.ts).
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { jsonlTarget } from '../pickers';
import { engineTask } from '../taskHost';
import type { AuditResult } from '../../protocol/results';
import { asOptions, asUri, type Cmd, type CommandEnv } from './args';

/** How the fold memories are trained (CLI defaults when absent); tests pass small, fast settings. */
export interface FindSuspectOptions {
  folds?: number;
  epochs?: number;
  method?: string;
  lr?: number;
  dropout?: number;
}

export function findSuspectLabels(ctx: Ctx, { suspects }: CommandEnv): Cmd {
  return (arg?: unknown, second?: unknown) =>
    engineTask(ctx, { trust: 'audit labels', what: 'finding suspect labels' }, async (task): Promise<AuditResult & { shown: number }> => {
      const opts = asOptions<FindSuspectOptions>(arg, second);
      const uri = task.onDisk(await jsonlTarget(asUri(arg), 'Find suspect labels in…'), 'reads');
      await task.read(uri);
      const backbone = await task.backbone();
      const base = path.basename(uri.fsPath);
      const folds = opts.folds ?? 4;
      const r = await task.run(`Finding suspect labels in ${base}`, (signal, report) => {
        let fold = 0;
        let of = folds;
        return ctx.runCommand(
          'audit',
          {
            backbone,
            data: uri.fsPath,
            folds,
            epochs: opts.epochs || undefined,
            method: opts.method || undefined,
            lr: opts.lr || undefined,
            dropout: opts.dropout,
            threads: ctx.config.threads || undefined,
          },
          {
            signal,
            onEvent: (e) => {
              if (e.event === 'fold') {
                fold = e.fold;
                of = e.folds;
                report({ message: `fold ${fold}/${of}`, increment: fold === 1 ? 0 : 100 / of });
              } else if (e.event === 'step' && e.steps) {
                report({ message: `fold ${fold}/${of}: step ${e.step}/${e.steps}` });
              }
            },
          },
        );
      });
      const doc = await vscode.workspace.openTextDocument(uri);
      const shown = suspects.show(doc, r.result.rows);
      ctx.log.info(
        `audit of ${uri.fsPath}: ${shown} suspect label(s) of ${r.result.rows.length} rows (${r.result.folds} folds, ${r.seconds.toFixed(1)} s)`,
      );
      void vscode.window
        .showInformationMessage(
          `${shown} suspect label(s) in ${base} (of ${r.result.rows.length} rows): see the Problems panel.`,
          ...(shown ? ['Show Problems'] : []),
        )
        .then((pick) => pick && vscode.commands.executeCommand('workbench.actions.view.problems'));
      if (shown) await vscode.window.showTextDocument(doc, { preview: false });
      return { ...r.result, shown };
    });
}
