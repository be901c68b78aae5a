/**
 * Entry point: a thin layer that builds the `Ctx`, registers the commands (`commands/index.ts`), the JSONL diagnostics, the
 * status bar item and the benchmark panel's serializer. Nothing heavy happens here: the engine runs in a child
 * process (`dist/cli.js`) only when a command needs it.
 */
import * as vscode from 'vscode';
import { BenchmarkPanel, VIEW_TYPE } from './benchmarkPanel';
import { COMMANDS } from './commands';
import { Ctx, EngineEventRecord } from './ctx';
import { JsonlDiagnostics } from './diagnostics';
import { SuspectLabels } from './suspectLabels';

/** What `activate` returns: for other extensions and the end-to-end tests. */
export interface SpartanApi {
  readonly activationMs: number;
  readonly onDidEngineEvent: vscode.Event<EngineEventRecord>;
  activeMemory(): string | undefined;
  isTraining(): boolean;
  benchmarkPanelRender(): typeof BenchmarkPanel.lastRender;
  diagnostics(uri: vscode.Uri): readonly vscode.Diagnostic[];
  /** The suspect-label diagnostics *Find Suspect Labels* left on a file. */
  suspectDiagnostics(uri: vscode.Uri): readonly vscode.Diagnostic[];
}

let ctx: Ctx | undefined;

export function activate(context: vscode.ExtensionContext): SpartanApi {
  const t0 = performance.now();
  const c = (ctx = new Ctx(context));
  context.subscriptions.push(c);
  const suspects = new SuspectLabels();
  context.subscriptions.push(suspects);
  for (const { id, factory } of COMMANDS) context.subscriptions.push(vscode.commands.registerCommand(id, factory(c, { suspects })));

  const diagnostics = new JsonlDiagnostics(c);
  context.subscriptions.push(diagnostics);
  context.subscriptions.push(
    vscode.window.registerWebviewPanelSerializer(VIEW_TYPE, {
      deserializeWebviewPanel(panel) {
        BenchmarkPanel.revive(c, panel);
        return Promise.resolve();
      },
    }),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('spartan.memoriesFolder')) c.fireStateChange();
      if (e.affectsConfiguration('spartan.threads')) c.resetServer();
    }),
  );
  // keep the status bar in step with memories written by the CLI or deleted by hand
  const folder = c.memoriesFolder();
  const ws = vscode.workspace.workspaceFolders?.[0];
  if (folder && ws) {
    const watcher = vscode.workspace.createFileSystemWatcher(new vscode.RelativePattern(vscode.Uri.file(folder), '*.safetensors'));
    context.subscriptions.push(
      watcher,
      watcher.onDidCreate(() => c.updateStatusBar()),
      watcher.onDidDelete(() => c.fireStateChange()),
    );
  }
  void vscode.commands.executeCommand('setContext', 'spartan.training', false);
  const activationMs = performance.now() - t0;
  c.log.info(
    `Spartan activated in ${activationMs.toFixed(1)} ms (VS Code ${vscode.version}, Node ${process.versions.node}, workspace ${vscode.workspace.isTrusted ? 'trusted' : 'untrusted'})`,
  );
  return {
    activationMs,
    onDidEngineEvent: c.onDidEngineEvent,
    activeMemory: () => c.activeMemoryPath(),
    isTraining: () => c.training !== undefined,
    benchmarkPanelRender: () => BenchmarkPanel.lastRender,
    diagnostics: (uri) => diagnostics.collection.get(uri) ?? [],
    suspectDiagnostics: (uri) => suspects.collection.get(uri) ?? [],
  };
}

export function deactivate(): void {
  ctx?.training?.abort.abort();
  ctx = undefined;
}
