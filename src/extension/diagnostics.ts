/**
 * JSONL problems in the Problems panel while a `.jsonl` file is open: the engine's own parser
 * (`jsonlEditorProblems`, pure) runs on the editor buffer, so what is flagged is exactly what training would
 * reject — except rows without a label, which *Suggest Rows to Label* takes: none in a file with no labels at
 * all, an Information hint per unlabelled row in a file that mixes both.
 */
import * as vscode from 'vscode';
import { jsonlEditorProblems } from '../engine/light';
import type { RowProblem } from '../engine/light';
import type { Ctx } from './ctx';

const MAX_CHARS = 64 * 1024 * 1024;

export function isJsonl(doc: vscode.TextDocument): boolean {
  return doc.languageId === 'jsonl' || doc.uri.path.toLowerCase().endsWith('.jsonl');
}

const SEVERITY: Record<RowProblem['severity'], vscode.DiagnosticSeverity> = {
  error: vscode.DiagnosticSeverity.Error,
  warning: vscode.DiagnosticSeverity.Warning,
  info: vscode.DiagnosticSeverity.Information,
};

export function toDiagnostics(doc: vscode.TextDocument, text = doc.getText()): vscode.Diagnostic[] {
  const problems = jsonlEditorProblems(text, doc.uri.fsPath);
  const out: vscode.Diagnostic[] = [];
  for (const p of problems) {
    const lineNo = Math.min(Math.max(p.line - 1, 0), doc.lineCount - 1);
    const line = doc.lineAt(lineNo);
    const start = p.column !== undefined ? Math.min(Math.max(p.column - 1, 0), line.text.length) : line.firstNonWhitespaceCharacterIndex;
    let end = line.text.length;
    if (start >= end) end = Math.min(start + 1, line.text.length);
    const d = new vscode.Diagnostic(new vscode.Range(lineNo, start, lineNo, Math.max(end, start)), p.message, SEVERITY[p.severity]);
    d.source = 'spartan';
    out.push(d);
  }
  return out;
}

export class JsonlDiagnostics implements vscode.Disposable {
  readonly collection = vscode.languages.createDiagnosticCollection('spartan-jsonl');
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly disposables: vscode.Disposable[] = [this.collection];

  constructor(private readonly ctx: Ctx) {
    this.disposables.push(
      vscode.workspace.onDidOpenTextDocument((d) => this.update(d)),
      vscode.workspace.onDidChangeTextDocument((e) => this.schedule(e.document)),
      vscode.workspace.onDidCloseTextDocument((d) => {
        this.collection.delete(d.uri);
        const t = this.timers.get(d.uri.toString());
        if (t) clearTimeout(t);
      }),
      vscode.workspace.onDidChangeConfiguration((e) => {
        if (e.affectsConfiguration('spartan.diagnostics')) this.refreshAll();
      }),
    );
    this.refreshAll();
  }

  refreshAll(): void {
    this.collection.clear();
    for (const d of vscode.workspace.textDocuments) this.update(d);
  }

  private schedule(doc: vscode.TextDocument): void {
    if (!isJsonl(doc)) return;
    const key = doc.uri.toString();
    const t = this.timers.get(key);
    if (t) clearTimeout(t);
    this.timers.set(
      key,
      setTimeout(() => {
        this.timers.delete(key);
        this.update(doc);
      }, 200),
    );
  }

  update(doc: vscode.TextDocument): void {
    if (!isJsonl(doc) || doc.isClosed) return;
    if (!this.ctx.config.diagnosticsEnabled) {
      this.collection.delete(doc.uri);
      return;
    }
    const text = doc.getText();
    if (text.length > MAX_CHARS) {
      this.collection.delete(doc.uri);
      return;
    }
    try {
      this.collection.set(doc.uri, toDiagnostics(doc, text));
    } catch (e) {
      this.ctx.log.error(`diagnostics for ${doc.uri.fsPath}: ${(e as Error).message}`);
    }
  }

  dispose(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    for (const d of this.disposables) d.dispose();
  }
}
