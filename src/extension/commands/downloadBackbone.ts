/** *Download Backbone…*: fetches a downloadable backbone (after the user agrees) into the extension's storage. */
import * as vscode from 'vscode';
import { DOWNLOADABLE, downloadBackbone as download, downloadDir, isBackboneDir } from '../backbone';
import type { Ctx } from '../ctx';
import type { Cmd } from './args';

export function downloadBackbone(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<string | undefined> => {
    const names = Object.keys(DOWNLOADABLE);
    const name =
      typeof arg === 'string'
        ? arg
        : names.length === 1
          ? names[0]
          : await vscode.window.showQuickPick(names, { title: 'Download which backbone?' });
    if (!name || !DOWNLOADABLE[name]) return undefined;
    const dir = downloadDir(ctx, name);
    if (isBackboneDir(dir)) {
      void vscode.window.showInformationMessage(`Backbone ${name} is already downloaded (${dir}).`);
      return dir;
    }
    const ok = await vscode.window.showInformationMessage(
      `Download the ${name} backbone (${DOWNLOADABLE[name].approxSize}) from huggingface.co?`,
      { modal: true, detail: `It is stored in ${dir}. Nothing else is sent or collected.` },
      'Download',
    );
    if (ok !== 'Download') return undefined;
    return (await download(ctx, name)) ? dir : undefined;
  };
}
