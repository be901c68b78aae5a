/**
 * The benchmark panel: a webview (src/webview/, bundled into dist/webview/panel.js, and media/benchmark.css) that
 * draws the throughput report of `spartan bench`, the training curves of the last fine-tunes, the parent-routing
 * heat map of `spartan routes` and the last evaluation as inline SVG. Strict CSP with a nonce, no remote content;
 * the page keeps its data with `setState` so it survives being hidden, and the extension pushes updates as messages.
 */
import * as crypto from 'node:crypto';
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { latestEvaluation } from './evaluationView';
import type { EvaluationDrawn, PanelReveal, ToExtension, ToWebview } from '../protocol/webview';

/** A section the panel scrolls to once drawn. */
export type { PanelReveal };

export const VIEW_TYPE = 'spartan.benchmark';

/** The page's script, as esbuild.mjs writes it (path segments under the extension's root). */
const PAGE_SCRIPT = ['dist', 'webview', 'panel.js'];

export interface PanelRenderInfo {
  charts: number;
  curves: number;
  benchRows: number;
  /** The routing heat map drawn: its layer, labels × parents and cell count, and which value it shows. */
  routing?: { layer: number; labels: number; parents: number; cells: number; view: 'counts' | 'gate' };
  /** The evaluation drawn: confusion cells, non-empty reliability bins, per-label rows; rows listed by the last cell clicked. */
  evaluation?: { confusionCells: number; reliabilityBins: number; perLabel: number; listedRows?: number };
  at: string;
}

export class BenchmarkPanel implements vscode.Disposable {
  static current: BenchmarkPanel | undefined;
  /** What the page last reported having drawn (tests read it through the extension's API). */
  static lastRender: PanelRenderInfo | undefined;
  private readonly disposables: vscode.Disposable[] = [];

  /** Opens (or reveals) the panel; `reveal: 'routing'` scrolls it to the routing heat map once drawn. */
  static show(ctx: Ctx, reveal?: PanelReveal): BenchmarkPanel {
    if (BenchmarkPanel.current) {
      BenchmarkPanel.current.panel.reveal();
      BenchmarkPanel.current.post(reveal);
      return BenchmarkPanel.current;
    }
    const panel = vscode.window.createWebviewPanel(VIEW_TYPE, 'Spartan Benchmark', vscode.ViewColumn.Active, BenchmarkPanel.options(ctx));
    const p = (BenchmarkPanel.current = new BenchmarkPanel(ctx, panel));
    p.pendingReveal = reveal;
    return p;
  }

  /** A reveal asked for before the page was ready (sent with the first update). */
  private pendingReveal: PanelReveal | undefined;

  static options(ctx: Ctx): vscode.WebviewOptions & vscode.WebviewPanelOptions {
    const root = ctx.extCtx.extensionUri;
    return {
      enableScripts: true,
      localResourceRoots: [vscode.Uri.joinPath(root, 'media'), vscode.Uri.joinPath(root, ...PAGE_SCRIPT.slice(0, -1))],
    };
  }

  /** Restores a panel after a window reload (registered as a serializer). */
  static revive(ctx: Ctx, panel: vscode.WebviewPanel): void {
    panel.webview.options = BenchmarkPanel.options(ctx);
    BenchmarkPanel.current = new BenchmarkPanel(ctx, panel);
  }

  private constructor(
    private readonly ctx: Ctx,
    readonly panel: vscode.WebviewPanel,
  ) {
    panel.iconPath = vscode.Uri.joinPath(ctx.extCtx.extensionUri, 'media', 'icon.png');
    panel.webview.html = this.html();
    this.disposables.push(
      panel.onDidDispose(() => this.dispose()),
      panel.webview.onDidReceiveMessage((m) => this.onMessage(m)),
      ctx.onDidChangeState(() => this.post()),
      ctx.onDidEngineEvent(({ command, event }) => {
        // The CLI's events of these commands, forwarded as they came (their shapes: src/protocol/events.ts).
        if (command === 'train') this.postToPage({ type: 'event', command, event });
        else if (command === 'bench') this.postToPage({ type: 'event', command, event });
      }),
    );
  }

  post(reveal?: PanelReveal): void {
    this.postToPage({
      type: 'update',
      curves: this.ctx.curves(),
      bench: this.ctx.benchReport() ?? null,
      routing: this.ctx.routing() ?? null,
      evaluation: latestEvaluation() ?? null,
      reveal,
    });
  }

  private postToPage(message: ToWebview): void {
    void this.panel.webview.postMessage(message);
  }

  /** Messages from the page (src/protocol/webview.ts); the page is ours, but its values are still checked. */
  private async onMessage(m: ToExtension): Promise<void> {
    switch (m.type) {
      case 'ready':
        this.post(this.pendingReveal);
        this.pendingReveal = undefined;
        break;
      case 'rendered': {
        const r = m.routing;
        BenchmarkPanel.lastRender = {
          charts: Number(m.charts) || 0,
          curves: Number(m.curves) || 0,
          benchRows: Number(m.benchRows) || 0,
          routing:
            r && typeof r === 'object'
              ? {
                  layer: Number(r.layer),
                  labels: Number(r.labels),
                  parents: Number(r.parents),
                  cells: Number(m.heatCells) || 0,
                  view: r.view === 'gate' ? 'gate' : 'counts',
                }
              : undefined,
          evaluation: evaluationDrawn(m.evaluation),
          at: new Date().toISOString(),
        };
        break;
      }
      case 'listedRows':
        if (BenchmarkPanel.lastRender?.evaluation) BenchmarkPanel.lastRender.evaluation.listedRows = Number(m.count) || 0;
        break;
      case 'openRow': {
        // A confusion cell's row: open the evaluated file at that line (only the file the panel was given).
        const ev = latestEvaluation();
        const line = Number(m.line);
        if (!ev || m.file !== ev.data || !Number.isInteger(line) || line < 1) break;
        const doc = await vscode.workspace.openTextDocument(vscode.Uri.file(ev.data));
        const range = doc.lineAt(Math.min(line, doc.lineCount) - 1).range;
        await vscode.window.showTextDocument(doc, {
          viewColumn: vscode.ViewColumn.Beside,
          selection: new vscode.Selection(range.start, range.end),
          preview: false,
        });
        break;
      }
      case 'showRouting':
        // "Other layer…": same memory and file, ask for the layer
        await vscode.commands.executeCommand('spartan.showRouting', {
          memory: typeof m.memory === 'string' ? m.memory : undefined,
          data: typeof m.data === 'string' ? m.data : undefined,
        });
        break;
      case 'runBench':
        await vscode.commands.executeCommand('spartan.runBenchmark');
        break;
      case 'openReport': {
        const pick = await vscode.window.showOpenDialog({
          title: 'Open a benchmark report (spartan bench --json)',
          canSelectMany: false,
          filters: { 'JSON report': ['json'] },
        });
        if (pick?.[0]) await vscode.commands.executeCommand('spartan.showBenchmark', { report: pick[0].fsPath });
        break;
      }
      case 'fineTune':
        await vscode.commands.executeCommand('spartan.fineTune');
        break;
      case 'showLog':
        this.ctx.log.show();
        break;
    }
  }

  private html(): string {
    const w = this.panel.webview;
    const nonce = crypto.randomBytes(16).toString('base64');
    const root = this.ctx.extCtx.extensionUri;
    const media = (f: string) => w.asWebviewUri(vscode.Uri.joinPath(root, 'media', f));
    return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; img-src ${w.cspSource} data:; style-src ${w.cspSource}; font-src ${w.cspSource}; script-src 'nonce-${nonce}';">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<link href="${media('benchmark.css').toString()}" rel="stylesheet">
<title>Spartan Benchmark</title>
</head>
<body>
<header>
  <h1>Spartan benchmark</h1>
  <div class="actions">
    <button id="run-bench" type="button">Run benchmark</button>
    <button id="open-report" type="button" class="secondary">Open report…</button>
    <button id="fine-tune" type="button" class="secondary">Fine-tune…</button>
    <button id="show-log" type="button" class="secondary">Show log</button>
  </div>
</header>
<main>
  <section id="curves"><h2>Training curves</h2><div class="content"></div></section>
  <section id="bench"><h2>Throughput</h2><div class="content"></div></section>
  <section id="routing" hidden><h2>Parent routing</h2><div class="content"></div></section>
  <section id="evaluation" hidden><h2>Evaluation</h2><div class="content"></div></section>
</main>
<script nonce="${nonce}" src="${w.asWebviewUri(vscode.Uri.joinPath(root, ...PAGE_SCRIPT)).toString()}"></script>
</body>
</html>`;
  }

  private disposed = false;

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    if (BenchmarkPanel.current === this) BenchmarkPanel.current = undefined;
    for (const d of this.disposables) d.dispose();
    this.panel.dispose();
  }
}

/** The page's report of the evaluation section, checked field by field (it comes from the webview). */
function evaluationDrawn(o: EvaluationDrawn | null | undefined): PanelRenderInfo['evaluation'] {
  if (!o || typeof o !== 'object') return undefined;
  return {
    confusionCells: Number(o.confusionCells) || 0,
    reliabilityBins: Number(o.reliabilityBins) || 0,
    perLabel: Number(o.perLabel) || 0,
  };
}
