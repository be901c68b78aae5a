/**
 * Which backbone folder to hand the engine: the `spartan.backbone` setting is `roberta-base` (downloaded on first
 * use into the extension's global storage, after the user agrees), `embedded` (the small model shipped in
 * `models/roberta-mini`, works offline) or a local folder.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from './ctx';
import { EngineCancelledError } from './engineProcess';
import { formatBytes } from './memoryFiles';

export const DOWNLOADABLE: Record<string, { repo: string; approxSize: string }> = {
  'roberta-base': { repo: 'FacebookAI/roberta-base', approxSize: 'about 500 MB' },
};

export function isBackboneDir(dir: string): boolean {
  return fs.existsSync(path.join(dir, 'config.json')) && fs.existsSync(path.join(dir, 'model.safetensors'));
}

export function downloadDir(ctx: Ctx, name: string): string {
  return path.join(ctx.extCtx.globalStorageUri.fsPath, 'backbones', name);
}

/** Resolves the setting to a folder, asking to download or to fall back on the embedded one. Undefined = cancelled. */
export async function resolveBackbone(ctx: Ctx): Promise<string | undefined> {
  const setting = ctx.config.backbone;
  if (setting === 'embedded') {
    if (isBackboneDir(ctx.embeddedBackbone)) return ctx.embeddedBackbone;
    void vscode.window.showErrorMessage(
      `The embedded backbone is missing from the extension (${ctx.embeddedBackbone}). Reinstall Spartan.`,
    );
    return undefined;
  }
  if (DOWNLOADABLE[setting]) {
    const dir = downloadDir(ctx, setting);
    if (isBackboneDir(dir)) return dir;
    const choice = await vscode.window.showInformationMessage(
      `Spartan needs the ${setting} backbone (${DOWNLOADABLE[setting].approxSize} from huggingface.co), which is not downloaded yet.`,
      {
        modal: true,
        detail: `It is stored in ${dir} and reused by every workspace. Or use the small embedded backbone, which works offline but gives weaker results.`,
      },
      'Download',
      'Use Embedded Backbone',
    );
    if (choice === 'Use Embedded Backbone') return useEmbedded(ctx);
    if (choice !== 'Download') return undefined;
    if (await downloadBackbone(ctx, setting)) return dir;
    return ctx.config.backbone === 'embedded' ? ctx.embeddedBackbone : undefined;
  }
  // a folder: absolute, ~/…, or relative to the first workspace folder
  let dir = setting.startsWith('~') ? path.join(os.homedir(), setting.slice(1)) : setting;
  if (!path.isAbsolute(dir)) {
    const ws = vscode.workspace.workspaceFolders?.[0];
    dir = ws ? path.join(ws.uri.fsPath, dir) : path.resolve(dir);
  }
  if (isBackboneDir(dir)) return dir;
  const pick = await vscode.window.showErrorMessage(
    `The backbone folder "${setting}" (setting spartan.backbone) has no config.json and model.safetensors.`,
    'Use Embedded Backbone',
    'Open Settings',
  );
  if (pick === 'Use Embedded Backbone') return useEmbedded(ctx);
  if (pick === 'Open Settings') void vscode.commands.executeCommand('workbench.action.openSettings', 'spartan.backbone');
  return undefined;
}

async function useEmbedded(ctx: Ctx): Promise<string> {
  const target = vscode.workspace.workspaceFolders?.length ? vscode.ConfigurationTarget.Workspace : vscode.ConfigurationTarget.Global;
  await vscode.workspace.getConfiguration('spartan').update('backbone', 'embedded', target);
  ctx.log.info('spartan.backbone set to "embedded"');
  return ctx.embeddedBackbone;
}

/** Runs `download` with a cancellable progress notification. Returns true when the backbone is in place. */
export async function downloadBackbone(ctx: Ctx, name: string): Promise<boolean> {
  const spec = DOWNLOADABLE[name];
  const dir = downloadDir(ctx, name);
  fs.mkdirSync(dir, { recursive: true });
  try {
    await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Downloading ${name}`, cancellable: true },
      async (progress, token) => {
        const abort = new AbortController();
        token.onCancellationRequested(() => abort.abort());
        let lastPct = 0;
        await ctx.runCommand(
          'download',
          { repo: spec.repo, dest: dir },
          {
            signal: abort.signal,
            onEvent: (e) => {
              const file = e.file;
              const received = e.received;
              const total = e.total ?? 0;
              if (file && total > 0) {
                const pct = Math.floor((100 * received) / total);
                progress.report({
                  message: `${file}: ${formatBytes(received)} of ${formatBytes(total)} (${pct} %)`,
                  increment: file === 'model.safetensors' ? Math.max(0, pct - lastPct) : undefined,
                });
                if (file === 'model.safetensors') lastPct = pct;
              } else if (file) progress.report({ message: file });
            },
          },
        );
      },
    );
  } catch (e) {
    if (e instanceof EngineCancelledError) {
      void vscode.window.showInformationMessage(`Download of ${name} cancelled; it resumes where it stopped next time.`);
      return false;
    }
    ctx.log.error(`download failed: ${(e as Error).message}`);
    const pick = await vscode.window.showErrorMessage(
      `Could not download ${name}: ${(e as Error).message.replace(/\.$/, '')}. The small embedded backbone works without a network.`,
      'Use Embedded Backbone',
    );
    if (pick === 'Use Embedded Backbone') await useEmbedded(ctx);
    return false;
  }
  if (!isBackboneDir(dir)) {
    void vscode.window.showErrorMessage(`The download of ${name} finished but ${dir} has no model.`);
    return false;
  }
  ctx.log.info(`${name} downloaded to ${dir}`);
  void vscode.window.showInformationMessage(`Backbone ${name} downloaded.`);
  return true;
}
