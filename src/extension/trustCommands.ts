/**
 * *Find Suspect Labels* and *Suggest Rows to Label*: thin layers over `spartan audit` and `spartan rank`.
 * Suspect rows become Information diagnostics at their label ("labelled `sports`, the memory says `business`
 * (0.93)") with a quick fix that rewrites the label; the rows to label next open in a quick pick that reveals
 * each row as it is highlighted.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { AuditResult, AuditRow, EvalResult, RankResult, RankRow } from '../protocol/results';
import { resolveBackbone } from './backbone';
import type { Ctx } from './ctx';
import { asOptions, asUri, memoryForUse, pickJsonl, readForEngine, requireTrust, showEngineError, type Cmd } from './commands';
import { labelValueRange } from './labelRange';
import { BenchmarkPanel } from './benchmarkPanel';
import { evalArgs } from './engineProcess';
import { remapLines, setEvaluation } from './evaluationView';

/** `Diagnostic.code` of a suspect label; the quick fix looks for it. */
export const SUSPECT_CODE = 'spartan.suspectLabel';
export const FIX_TITLE = (label: string) => `Change label to "${label}"`;

/** A suspect row's diagnostic, with the label the out-of-fold memory prefers (for the quick fix). */
class SuspectDiagnostic extends vscode.Diagnostic {
  constructor(
    range: vscode.Range,
    readonly row: AuditRow,
  ) {
    super(
      range,
      `labelled \`${row.label}\`, the memory says \`${row.predicted}\` (${row.p_predicted.toFixed(2)})`,
      vscode.DiagnosticSeverity.Information,
    );
    this.source = 'Spartan';
    this.code = SUSPECT_CODE;
  }
}

/** The suspect-label diagnostics of every audited file, and the quick fix that rewrites a label. */
export class SuspectLabels implements vscode.Disposable, vscode.CodeActionProvider {
  readonly collection = vscode.languages.createDiagnosticCollection('spartan-suspects');
  private readonly disposables: vscode.Disposable[] = [this.collection];

  constructor() {
    this.disposables.push(
      vscode.languages.registerCodeActionsProvider({ language: 'jsonl' }, this, {
        providedCodeActionKinds: [vscode.CodeActionKind.QuickFix],
      }),
      // An edited line's verdict is stale: drop the diagnostics of the lines a change touches.
      vscode.workspace.onDidChangeTextDocument((e) => {
        const current = this.collection.get(e.document.uri);
        if (!current?.length || !e.contentChanges.length) return;
        const touched = (d: vscode.Diagnostic) =>
          e.contentChanges.some((c) => c.range.start.line <= d.range.end.line && c.range.end.line >= d.range.start.line);
        const lineDelta = e.contentChanges.reduce((n, c) => n + c.text.split('\n').length - 1 - (c.range.end.line - c.range.start.line), 0);
        if (lineDelta !== 0) this.collection.delete(e.document.uri);
        else
          this.collection.set(
            e.document.uri,
            current.filter((d) => !touched(d)),
          );
      }),
    );
  }

  /** Shows the audit's flagged rows of `uri` (replacing earlier ones); returns how many were shown. */
  show(doc: vscode.TextDocument, rows: AuditRow[]): number {
    const diagnostics = rows
      .filter((r) => r.issue && r.line >= 1 && r.line <= doc.lineCount)
      .map((r) => {
        const text = doc.lineAt(r.line - 1).text;
        const at = labelValueRange(text);
        const range = at ? new vscode.Range(r.line - 1, at.start, r.line - 1, at.end) : doc.lineAt(r.line - 1).range;
        return new SuspectDiagnostic(range, r);
      });
    this.collection.set(doc.uri, diagnostics);
    return diagnostics.length;
  }

  provideCodeActions(doc: vscode.TextDocument, _range: vscode.Range, context: vscode.CodeActionContext): vscode.CodeAction[] {
    const out: vscode.CodeAction[] = [];
    for (const d of context.diagnostics) {
      if (d.code !== SUSPECT_CODE) continue;
      const row = (d as SuspectDiagnostic).row ?? this.rowOf(doc.uri, d);
      if (!row) continue;
      const at = labelValueRange(doc.lineAt(d.range.start.line).text);
      if (!at) continue;
      const action = new vscode.CodeAction(FIX_TITLE(row.predicted), vscode.CodeActionKind.QuickFix);
      action.diagnostics = [d];
      action.isPreferred = true;
      action.edit = new vscode.WorkspaceEdit();
      action.edit.replace(
        doc.uri,
        new vscode.Range(d.range.start.line, at.start, d.range.start.line, at.end),
        JSON.stringify(row.predicted),
      );
      out.push(action);
    }
    return out;
  }

  /** Diagnostics handed back by VS Code may be copies: find ours by line. */
  private rowOf(uri: vscode.Uri, d: vscode.Diagnostic): AuditRow | undefined {
    const mine = this.collection.get(uri)?.find((x) => x.range.start.line === d.range.start.line) as SuspectDiagnostic | undefined;
    return mine?.row;
  }

  dispose(): void {
    for (const d of this.disposables) d.dispose();
  }
}

/** The JSONL file a command works on: its argument, the active JSONL editor, or a pick. */
async function targetFile(arg: unknown, title: string): Promise<vscode.Uri | undefined> {
  const active = vscode.window.activeTextEditor?.document;
  const uri = asUri(arg) ?? (active?.languageId === 'jsonl' ? active.uri : await pickJsonl(title));
  if (uri && uri.scheme !== 'file') {
    void vscode.window.showErrorMessage('Spartan reads files on disk: save the JSONL file first.');
    return undefined;
  }
  return uri;
}

/** How the fold memories are trained (CLI defaults when absent); tests pass small, fast settings. */
export interface FindSuspectOptions {
  folds?: number;
  epochs?: number;
  method?: string;
  lr?: number;
  dropout?: number;
}

export function findSuspectLabels(ctx: Ctx, suspects: SuspectLabels): Cmd {
  return async (arg?: unknown, second?: unknown): Promise<(AuditResult & { shown: number }) | undefined> => {
    if (!requireTrust('audit labels')) return undefined;
    const opts = asOptions<FindSuspectOptions>(arg, second);
    const uri = await targetFile(arg, 'Find suspect labels in…');
    if (!uri) return undefined;
    await readForEngine(uri);
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;
    const base = path.basename(uri.fsPath);
    const args = ['audit', '--backbone', backbone, '--data', uri.fsPath, '--folds', String(opts.folds ?? 4)];
    if (opts.epochs) args.push('--epochs', String(opts.epochs));
    if (opts.method) args.push('--method', opts.method);
    if (opts.lr) args.push('--lr', String(opts.lr));
    if (opts.dropout !== undefined) args.push('--dropout', String(opts.dropout));
    if (ctx.config.threads) args.push('--threads', String(ctx.config.threads));
    try {
      const r = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Notification, title: `Finding suspect labels in ${base}`, cancellable: true },
        (progress, token) => {
          const abort = new AbortController();
          token.onCancellationRequested(() => abort.abort());
          let fold = 0,
            folds = opts.folds ?? 4;
          return ctx.runCommand('audit', args, {
            signal: abort.signal,
            onEvent: (e) => {
              if (e.event === 'fold') {
                fold = e.fold;
                folds = e.folds;
                progress.report({ message: `fold ${fold}/${folds}`, increment: fold === 1 ? 0 : 100 / folds });
              } else if (e.event === 'step' && e.steps) {
                progress.report({ message: `fold ${fold}/${folds}: step ${e.step}/${e.steps}` });
              }
            },
          });
        },
      );
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
    } catch (e) {
      showEngineError(ctx, 'finding suspect labels', e);
      return undefined;
    }
  };
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

export function suggestRowsToLabel(ctx: Ctx): Cmd {
  return async (arg?: unknown, second?: unknown): Promise<RankResult | undefined> => {
    if (!requireTrust('rank rows')) return undefined;
    const opts = asOptions<{ memory?: string; top?: number; pick?: boolean }>(arg, second);
    const uri = await targetFile(arg, 'Suggest rows to label from…');
    if (!uri) return undefined;
    const mem = await memoryForUse(ctx, opts.memory);
    if (!mem) return undefined;
    await readForEngine(uri);
    const backbone = await resolveBackbone(ctx);
    if (!backbone) return undefined;
    const args = ['rank', '--backbone', backbone, '--memory', mem.path, '--data', uri.fsPath];
    if (ctx.config.threads) args.push('--threads', String(ctx.config.threads));
    try {
      const r = await vscode.window.withProgress(
        {
          location: vscode.ProgressLocation.Notification,
          title: `Ranking the rows of ${path.basename(uri.fsPath)} by '${mem.name}''s uncertainty`,
        },
        () => ctx.runCommand('rank', args),
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
        qp.title = `Rows to label next in ${path.basename(uri.fsPath)} (most uncertain first)`;
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
    } catch (e) {
      showEngineError(ctx, 'ranking rows', e);
      return undefined;
    }
  };
}

/**
 * After a fine-tune: evaluates the new memory on its dev rows and shows the result in the benchmark panel.
 * `lineOf` maps the dev file's lines to the source file's when the dev rows were a held-out share written to a
 * temp file. Failures are logged, not shown: the memory was saved and the user was told so.
 */
export async function evaluateForPanel(
  ctx: Ctx,
  backbone: string,
  memory: string,
  memoryName: string,
  devFile: string,
  source: string,
  lineOf?: number[],
): Promise<void> {
  try {
    const args = evalArgs(backbone, memory, devFile, ctx.config.threads || undefined);
    const r = await ctx.runCommand('eval', args);
    setEvaluation(memoryName, source, lineOf ? remapLines(r.result, lineOf) : r.result);
    BenchmarkPanel.current?.post();
  } catch (e) {
    ctx.log.warn(`evaluation of ${memory} on its dev rows for the panel failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/**
 * Keeps an evaluation for the panel and tells the user `message`: an open panel redraws at once; otherwise the
 * message offers to open it (the panel does not steal the editor's place uninvited).
 */
export function showEvaluation(ctx: Ctx, memoryName: string, data: string, result: EvalResult, message: string): void {
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

/** The button of the evaluation message that opens the panel at its evaluation section. */
export const SHOW_EVALUATION = 'Show Confusion Matrix';
