/** *Export Task Model (ONNX)…*: `spartan export` of a memory and its backbone as one standalone ONNX model. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { formatBytes } from '../memoryFiles';
import { pickMemory, readMemoryOrReport } from '../pickers';
import { engineTask } from '../taskHost';
import { asOptions, uriWithExt, type Cmd } from './args';

export function exportModel(ctx: Ctx): Cmd {
  return (arg?: unknown) =>
    engineTask(ctx, { trust: 'export models', what: 'export' }, async (task): Promise<{ onnx: string; bytes: number }> => {
      const opts = asOptions<{ memory?: string; out?: string }>(arg);
      const given = opts.memory ?? uriWithExt(arg, '.safetensors')?.fsPath;
      // A given memory is read through the same checks as a picked one (an unreadable file is reported, not thrown).
      const mem = task.need(
        given !== undefined ? readMemoryOrReport(ctx, given) : await pickMemory(ctx, 'Export which memory as an ONNX task model?'),
      );
      const out = task.need(opts.out ?? (await askOutput(mem.name)));
      fs.mkdirSync(path.dirname(out), { recursive: true });
      const backbone = await task.backbone();
      const r = await task.run(
        `Exporting '${mem.name}' to ONNX`,
        () => ctx.runCommand('export', { backbone, memory: mem.path, onnx: out }),
        {
          cancellable: false,
        },
      );
      const { bytes } = r.result;
      ctx.log.info(`exported ${mem.path} to ${out} (${formatBytes(bytes)})`);
      void vscode.window
        .showInformationMessage(`Exported '${mem.name}' to ${vscode.workspace.asRelativePath(out)} (${formatBytes(bytes)}).`, 'Reveal')
        .then((p) => p && vscode.commands.executeCommand('revealFileInOS', vscode.Uri.file(out)));
      return { onnx: out, bytes };
    });
}

/** Where to write the model: `.spartan/exports/<name>.onnx` of the workspace is offered. */
async function askOutput(name: string): Promise<string | undefined> {
  const ws = vscode.workspace.workspaceFolders?.[0]?.uri;
  const defaultUri = ws
    ? vscode.Uri.joinPath(ws, '.spartan', 'exports', `${name}.onnx`)
    : vscode.Uri.file(path.join(os.homedir(), `${name}.onnx`));
  const pick = await vscode.window.showSaveDialog({ title: `Export '${name}' as ONNX`, defaultUri, filters: { ONNX: ['onnx'] } });
  return pick?.fsPath;
}
