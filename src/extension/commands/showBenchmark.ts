/** *Show Benchmark Panel*: opens the panel, after loading a `spartan bench --json` report when one is given. */
import * as fs from 'node:fs';
import * as vscode from 'vscode';
import { BenchmarkPanel } from '../benchmarkPanel';
import type { Ctx } from '../ctx';
import type { PanelBench } from '../../protocol/webview';
import { asOptions, uriWithExt, type Cmd } from './args';

export function showBenchmark(ctx: Ctx): Cmd {
  return async (arg?: unknown) => {
    const report = asOptions<{ report?: string }>(arg).report ?? uriWithExt(arg, '.json')?.fsPath;
    if (report) await loadBenchReport(ctx, report);
    BenchmarkPanel.show(ctx);
    return true;
  };
}

/** Reads a `spartan bench --json` report (an object with `rows`, or a bare array of rows) and shows it in the panel. */
async function loadBenchReport(ctx: Ctx, file: string): Promise<boolean> {
  let report: unknown;
  try {
    report = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    void vscode.window.showErrorMessage(`Spartan: ${file} is not a JSON benchmark report: ${(e as Error).message}`);
    return false;
  }
  if (Array.isArray(report)) report = { rows: report };
  const rows = (report as { rows?: unknown }).rows;
  if (!report || typeof report !== 'object' || !Array.isArray(rows)) {
    void vscode.window.showErrorMessage(`Spartan: ${file} has no "rows" array; write one with \`spartan bench --json > report.json\`.`);
    return false;
  }
  await ctx.setBenchReport({ ranAt: fs.statSync(file).mtime.toISOString(), ...(report as PanelBench), source: file });
  ctx.log.info(`benchmark report loaded from ${file} (${rows.length} rows)`);
  return true;
}
