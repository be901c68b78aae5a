/**
 * *Suggest Rows to Label*: `spartan rank` orders a file's rows by the memory's uncertainty; the most uncertain open
 * in a quick pick that reveals each row as it is highlighted.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { jsonlTarget, memoryForUse } from '../pickers';
import { engineTask } from '../taskHost';
import type { RankResult, RankRow } from '../../protocol/results';
import { asOptions, asUri, type Cmd } from './args';

export function suggestRowsToLabel(ctx: Ctx): Cmd {
  return (arg?: unknown, second?: unknown) =>
    engineTask(ctx, { trust: 'rank rows', what: 'ranking rows' }, async (task): Promise<RankResult> => {
      const opts = asOptions<{ memory?: string; top?: number; pick?: boolean }>(arg, second);
      const uri = task.onDisk(await jsonlTarget(asUri(arg), 'Suggest rows to label from…'), 'reads');
      const mem = task.need(await memoryForUse(ctx, opts.memory));
      await task.read(uri);
      const backbone = await task.backbone();
      const base = path.basename(uri.fsPath);
      const r = await task.run(
        `Ranking the rows of ${base} by '${mem.name}''s uncertainty`,
        () => ctx.runCommand('rank', { backbone, memory: mem.path, data: uri.fsPath, threads: ctx.config.threads || undefined }),
        { cancellable: false },
      );
      const doc = await vscode.workspace.openTextDocument(uri);
      const top = r.result.rows.slice(0, opts.top ?? 20);
      ctx.log.info(
        `rank of ${uri.fsPath} with ${mem.path}: ${r.result.rows.length} rows; most uncertain: ${top
          .slice(0, 5)
          .map((x) => `line ${x.line} (margin ${x.margin.toFixed(3)})`)
          .join(', ')}`,
      );
      const editor = await vscode.window.showTextDocument(doc, { preview: false });
      const reveal = (line: number) => {
        const range = doc.lineAt(line - 1).range;
        editor.selection = new vscode.Selection(range.start, range.end);
        editor.revealRange(range, vscode.TextEditorRevealType.InCenterIfOutsideViewport);
      };
      if (top.length) reveal(top[0].line);
      if (opts.pick !== false && top.length) {
        const qp = vscode.window.createQuickPick<ReturnType<typeof rankItem>>();
        qp.title = `Rows to label next in ${base} (most uncertain first)`;
        qp.items = top.map((x) => rankItem(doc, x));
        qp.onDidChangeActive((items) => items[0] && reveal(items[0].row.line));
        qp.onDidAccept(() => {
          const item = qp.selectedItems[0];
          if (item) reveal(item.row.line);
          qp.hide();
        });
        qp.onDidHide(() => qp.dispose());
        qp.show();
      }
      return r.result;
    });
}

/** The quick-pick entry of a row to label: its line, text and the memory's doubt. */
function rankItem(doc: vscode.TextDocument, r: RankRow): vscode.QuickPickItem & { row: RankRow } {
  let text = '';
  try {
    text = String(JSON.parse(doc.lineAt(r.line - 1).text).text ?? '');
  } catch {
    text = doc.lineAt(r.line - 1).text;
  }
  const predicted = Array.isArray(r.predicted) ? `[${r.predicted.join(', ')}]` : r.predicted;
  return {
    label: `${r.line}: ${text.length > 80 ? text.slice(0, 79) + '…' : text}`,
    description: `predicted ${predicted} · margin ${r.margin.toFixed(3)} · entropy ${r.entropy.toFixed(3)}`,
    row: r,
  };
}
