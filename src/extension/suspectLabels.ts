/**
 * The diagnostics of *Find Suspect Labels*: a suspect row becomes an Information diagnostic at its label
 * ("labelled `sports`, the memory says `business` (0.93)") with a quick fix that rewrites the label; an edit drops
 * the verdicts of the lines it touches.
 */
import * as vscode from 'vscode';
import type { AuditRow } from '../protocol/results';
import { labelValueRange } from './labelRange';

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
