/** *Select Active Memory…*: a memory file (argument, explorer menu or pick) becomes the one commands use. */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import { pickMemory, readMemoryOrReport } from '../pickers';
import type { Cmd } from './args';

export function selectMemory(ctx: Ctx): Cmd {
  return async (arg?: unknown): Promise<string | undefined> => {
    const given = typeof arg === 'string' ? arg : arg instanceof vscode.Uri ? arg.fsPath : undefined;
    // A given file is read through the same checks as a picked one; an unreadable one is reported, not made active.
    const m = given !== undefined ? readMemoryOrReport(ctx, given) : await pickMemory(ctx, 'Select the active Spartan memory');
    if (!m) return undefined;
    await ctx.setActiveMemory(m.path);
    ctx.log.info(`active memory: ${m.path}`);
    return m.path;
  };
}
