/** *Cancel Fine-tune*: aborts the running `spartan train` (the child is killed; the previous memory stays). */
import * as vscode from 'vscode';
import type { Ctx } from '../ctx';
import type { Cmd } from './args';

export function cancelFineTune(ctx: Ctx): Cmd {
  return () => {
    if (!ctx.training) {
      void vscode.window.showInformationMessage('Spartan is not fine-tuning anything.');
      return false;
    }
    ctx.log.info(`cancelling fine-tuning '${ctx.training.task}'`);
    ctx.training.abort.abort();
    return true;
  };
}
