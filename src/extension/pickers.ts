/**
 * The prompts commands share: a JSONL file of the workspace, a memory (the active one, or a pick), and reading a
 * file as the engine will. Each returns undefined when the user dismissed it or was told why it cannot go on.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import { readRegularFileAsync, MAX_JSONL_BYTES } from '../engine/light';
import type { Ctx } from './ctx';
import { formatBytes, formatMetrics, formatTrainedBy, readMemoryInfo, type MemoryInfo } from './memoryFiles';

/** Asks for a `.jsonl` file of the workspace; the active editor's file comes first. */
export async function pickJsonl(title: string): Promise<vscode.Uri | undefined> {
  const files = await vscode.workspace.findFiles('**/*.jsonl', '{**/node_modules/**,**/.git/**,**/.spartan/**}', 2000);
  const active = vscode.window.activeTextEditor?.document.uri;
  if (files.length === 0) {
    const open = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters: { 'JSON Lines': ['jsonl'] } });
    return open?.[0];
  }
  files.sort((a, b) =>
    active && a.toString() === active.toString() ? -1 : active && b.toString() === active.toString() ? 1 : a.fsPath.localeCompare(b.fsPath),
  );
  const items: (vscode.QuickPickItem & { uri?: vscode.Uri })[] = files.map((uri) => ({
    label: path.basename(uri.fsPath),
    description: vscode.workspace.asRelativePath(path.dirname(uri.fsPath), true),
    uri,
  }));
  items.push({ label: '$(folder-opened) Browse…', alwaysShow: true });
  const pick = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: 'JSONL file: one {"text": …, "label": …} object per line',
    matchOnDescription: true,
  });
  if (!pick) return undefined;
  if (pick.uri) return pick.uri;
  const open = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters: { 'JSON Lines': ['jsonl'] } });
  return open?.[0];
}

/** The file's text: the editor's buffer when open (saved first if dirty, since the engine reads the disk). */
export async function readForEngine(uri: vscode.Uri): Promise<string> {
  const doc = vscode.workspace.textDocuments.find((d) => d.uri.toString() === uri.toString());
  if (doc?.isDirty) await doc.save();
  // A file on disk is read as the engine reads it: a bounded regular file (a FIFO or a 5 GB file must not hang or
  // exhaust the extension host).
  if (uri.scheme === 'file') return (await readRegularFileAsync(uri.fsPath, MAX_JSONL_BYTES)).toString('utf8');
  return Buffer.from(await vscode.workspace.fs.readFile(uri)).toString('utf8');
}

export async function pickMemory(ctx: Ctx, title: string, opts: { activeFirst?: boolean } = {}): Promise<MemoryInfo | undefined> {
  const all = await ctx.listMemories();
  const active = ctx.activeMemoryPath();
  // the active memory first, so that Enter picks it
  if (opts.activeFirst && active) all.sort((a, b) => Number(b.path === active) - Number(a.path === active));
  type Item = vscode.QuickPickItem & { path?: string; browse?: boolean };
  const items: Item[] = all.map((m) =>
    'error' in m
      ? { label: `$(error) ${m.name}`, description: 'unreadable', detail: m.error, path: m.path }
      : {
          label: `${m.path === active ? '$(check) ' : ''}${m.name}`,
          description: `${m.taskType ?? ''}${m.labels.length ? ': ' + m.labels.slice(0, 6).join(', ') : ''}${m.backboneName ? ' · ' + m.backboneName : ''}${m.trainedBy ? ' · ' + formatTrainedBy(m.trainedBy) : ''}`,
          detail: [formatMetrics(m.metrics), formatBytes(m.bytes), m.mtime.toLocaleString()].filter(Boolean).join(' · '),
          path: m.path,
        },
  );
  items.push({ label: '$(folder-opened) Browse…', browse: true, alwaysShow: true });
  const pick = await vscode.window.showQuickPick(items, {
    title,
    placeHolder: all.length
      ? 'Memory (.safetensors)'
      : `No memories in ${ctx.memoriesFolder() ?? 'the memories folder'} yet: browse, or run "Spartan: Fine-tune Memory from JSONL…"`,
    matchOnDescription: true,
  });
  if (!pick) return undefined;
  let p = pick.path;
  if (pick.browse) {
    const open = await vscode.window.showOpenDialog({ title, canSelectMany: false, filters: { 'Spartan memory': ['safetensors'] } });
    p = open?.[0]?.fsPath;
  }
  if (!p) return undefined;
  return readMemoryOrReport(ctx, p);
}

/** The memory file's info, or undefined after telling the user why it cannot be read. */
export function readMemoryOrReport(ctx: Ctx, file: string): MemoryInfo | undefined {
  try {
    return ctx.withPair(readMemoryInfo(file));
  } catch (e) {
    void vscode.window.showErrorMessage(`Spartan: ${(e as Error).message}`);
    return undefined;
  }
}

/** The active memory, or the user's pick when there is none; an unreadable memory is reported, not thrown. */
export async function memoryForUse(ctx: Ctx, explicit?: string): Promise<MemoryInfo | undefined> {
  if (explicit) return readMemoryOrReport(ctx, explicit);
  const m = ctx.activeMemory();
  if (m) return m;
  const pick = await vscode.window.showWarningMessage('Spartan has no active memory yet.', 'Fine-tune…', 'Select Memory…');
  if (pick === 'Fine-tune…') void vscode.commands.executeCommand('spartan.fineTune');
  if (pick === 'Select Memory…') {
    const chosen = await pickMemory(ctx, 'Select the active Spartan memory');
    if (chosen) await ctx.setActiveMemory(chosen.path);
    return chosen;
  }
  return undefined;
}

/** The JSONL file a command works on: its argument, else the active JSONL editor's file, else a pick. */
export async function jsonlTarget(arg: vscode.Uri | undefined, title: string): Promise<vscode.Uri | undefined> {
  const active = vscode.window.activeTextEditor?.document;
  return arg ?? (active?.languageId === 'jsonl' ? active.uri : await pickJsonl(title));
}
