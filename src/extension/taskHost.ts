/**
 * The VS Code side of the task pipeline (src/extension/engineTask.ts): its `TaskHost` built from the window, the
 * workspace trust, the log and the backbone resolver, and `engineTask`, which every command that runs the engine
 * goes through.
 */
import * as vscode from 'vscode';
import { resolveBackbone } from './backbone';
import type { Ctx } from './ctx';
import { runEngineTask, type EngineTask, type EngineTaskSpec, type TaskHost } from './engineTask';
import { readForEngine } from './pickers';

export function vscodeTaskHost(ctx: Ctx): TaskHost {
  return {
    isTrusted: () => vscode.workspace.isTrusted,
    warnUntrusted: (what) =>
      void vscode.window
        .showWarningMessage(
          `Spartan does not ${what} in an untrusted workspace: it would run its engine on files and settings from this workspace.`,
          'Manage Workspace Trust',
        )
        .then((p) => p && vscode.commands.executeCommand('workbench.trust.manage')),
    showError: (message, ...actions) => Promise.resolve(vscode.window.showErrorMessage(message, ...actions)),
    showInfo: (message) => void vscode.window.showInformationMessage(message),
    showLog: () => ctx.log.show(),
    log: ctx.log,
    withProgress: (o, work) =>
      Promise.resolve(
        vscode.window.withProgress(
          {
            location: o.location === 'window' ? vscode.ProgressLocation.Window : vscode.ProgressLocation.Notification,
            title: o.title,
            cancellable: o.cancellable,
          },
          (progress, token) => {
            const abort = new AbortController();
            token.onCancellationRequested(() => abort.abort());
            return work((p) => progress.report(p), abort.signal);
          },
        ),
      ),
    resolveBackbone: () => resolveBackbone(ctx),
    readForEngine: (file) => readForEngine(file instanceof vscode.Uri ? file : vscode.Uri.file(file.fsPath)),
  };
}

/** A command's task on the VS Code host: see `runEngineTask`. */
export function engineTask<T>(ctx: Ctx, spec: EngineTaskSpec, body: (task: EngineTask) => Promise<T>): Promise<T | undefined> {
  return runEngineTask(vscodeTaskHost(ctx), spec, body);
}
