/**
 * *Show Parent Routing…* (the paper's Figure 2): `spartan routes` on a SPARTAN memory, a labelled file and a
 * layer; the labels × parents heat map is drawn in the benchmark panel.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { BenchmarkPanel } from '../benchmarkPanel';
import type { Ctx } from '../ctx';
import { formatSeconds } from '../memoryFiles';
import { pickJsonl, pickMemory, readMemoryOrReport } from '../pickers';
import { parseRoutingReport, spartanLayers, type RoutingView } from '../routing';
import { engineTask } from '../taskHost';
import { asOptions, uriWithExt, type Cmd } from './args';

export interface ShowRoutingOptions {
  /** Memory file; asked when absent (the active memory is offered first). */
  memory?: string;
  /** Labelled JSONL file; asked when absent. */
  data?: string;
  /** Encoder layer (0-based); asked when absent, the last layer offered first. */
  layer?: number;
}

export function showRouting(ctx: Ctx): Cmd {
  return (arg?: unknown, second?: unknown) =>
    engineTask(ctx, { trust: 'analyse parent routing', what: 'parent routing' }, async (task): Promise<RoutingView> => {
      const opts = asOptions<ShowRoutingOptions>(arg, second);
      const given = opts.memory ?? uriWithExt(arg, '.safetensors')?.fsPath;
      const mem = task.need(
        given !== undefined
          ? readMemoryOrReport(ctx, given)
          : await pickMemory(ctx, 'Parent routing: which memory?', { activeFirst: true }),
      );
      const method = mem.metadata.method ?? (mem.hyperparameters?.method as string | undefined);
      const layers = task.guard(() => spartanLayers(mem.path));
      if ((method && method !== 'spartan') || layers.length === 0)
        task.refuse(
          `Spartan: '${mem.name}' is ${method ? `a "${method}" memory` : 'not a SPARTAN memory'}; parent routing needs a SPARTAN memory.`,
        );
      const uri = task.onDisk(
        opts.data
          ? vscode.Uri.file(opts.data)
          : (uriWithExt(arg, '.jsonl') ?? (await pickJsonl(`Parent routing of '${mem.name}' on which labelled file?`))),
        'analyses',
      );
      const base = path.basename(uri.fsPath);
      const layer = task.need(
        opts.layer ??
          (layers.length === 1 ? layers[0] : await pickLayer(`Parent routing of '${mem.name}' on ${base}: which layer?`, layers)),
      );
      if (!layers.includes(layer))
        task.refuse(`Spartan: '${mem.name}' has no layer ${layer}: its SPARTAN layers are ${layers[0]} … ${layers[layers.length - 1]}.`);
      await task.read(uri);
      const backbone = await task.backbone();
      const r = await task.run(`Parent routing of '${mem.name}' at layer ${layer} on ${base}`, (signal) =>
        ctx.runCommand(
          'routes',
          { backbone, memory: mem.path, data: uri.fsPath, layer, skipInvalid: true, threads: ctx.config.threads || undefined },
          { signal },
        ),
      );
      const report = parseRoutingReport(r.result);
      const view: RoutingView = {
        ...report,
        memory: mem.path,
        memoryName: mem.name,
        data: uri.fsPath,
        dataName: base,
        ranAt: new Date().toISOString(),
      };
      const total = report.tokens.reduce((a, b) => a + b, 0);
      ctx.log.info(
        `parent routing of '${mem.name}' at layer ${report.layer} on ${base}: ${report.labels.length} labels, ${total} tokens, top-${report.topK} of ${report.parents} parents (${formatSeconds(r.seconds)})`,
      );
      await ctx.setRouting(view);
      BenchmarkPanel.show(ctx, 'routing');
      return view;
    });
}

/** Asks for a layer among `layers`, the last one selected. */
async function pickLayer(title: string, layers: number[]): Promise<number | undefined> {
  const last = layers[layers.length - 1];
  const qp = vscode.window.createQuickPick<vscode.QuickPickItem & { layer: number }>();
  qp.title = title;
  qp.placeholder = `Encoder layer (0 … ${last})`;
  qp.items = layers.map((l) => ({
    label: `Layer ${l}`,
    description: l === last ? 'last layer' : l === 0 ? 'first layer' : undefined,
    layer: l,
  }));
  qp.activeItems = qp.items.filter((i) => i.layer === last);
  return new Promise((resolve) => {
    let picked: number | undefined;
    qp.onDidAccept(() => {
      picked = qp.selectedItems[0]?.layer ?? qp.activeItems[0]?.layer;
      qp.hide();
    });
    qp.onDidHide(() => {
      qp.dispose();
      resolve(picked);
    });
    qp.show();
  });
}
