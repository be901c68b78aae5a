/**
 * What a command handler is given. The explorer and editor menus pass a Uri, tests and other commands pass an
 * options object (to skip the prompts), the palette passes nothing: every handler accepts all three, so they drive
 * the same code.
 */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { SuspectLabels } from '../suspectLabels';

/** A registered command's handler: its result, or undefined when the user cancelled or the input was refused. */
export type Cmd = (...args: unknown[]) => unknown;

/** What handlers share beyond the `Ctx`: the diagnostics owners that outlive one run. */
export interface CommandEnv {
  suspects: SuspectLabels;
}

/** A command: its id (package.json `contributes.commands`) and the factory of its handler. */
export interface CommandEntry {
  id: string;
  factory: (ctx: Ctx, env: CommandEnv) => Cmd;
}

export function asUri(arg: unknown): vscode.Uri | undefined {
  return arg instanceof vscode.Uri ? arg : undefined;
}

/** The Uri argument when its path ends with `ext` (a menu on another kind of file passes one too). */
export function uriWithExt(arg: unknown, ext: string): vscode.Uri | undefined {
  const uri = asUri(arg);
  return uri && uri.fsPath.endsWith(ext) ? uri : undefined;
}

/** The first argument that is an options object (not a Uri, not an array), else `{}`. */
export function asOptions<T extends object>(...args: unknown[]): T {
  for (const a of args) if (a && typeof a === 'object' && !(a instanceof vscode.Uri) && !Array.isArray(a)) return a as T;
  return {} as T;
}
