/**
 * The `spartan` command line: train, classify, eval, export, download, bench. Every command takes --json.
 * User errors (SpartanError) print a message naming the file and problem and exit 1; anything else is a bug
 * and prints its stack.
 */
import { Command, CommanderError } from 'commander';
import { SpartanError, describeFsError, exitWithParent } from '../engine';
import { registerTrain } from './commands/train';
import { registerClassify } from './commands/classify';
import { registerEval } from './commands/evaluate';
import { registerDownload } from './commands/download';
import { registerExport } from './commands/export';
import { registerServe } from './commands/serve';
import { registerGlue } from './commands/glue';
import { registerRoutes } from './commands/routes';
import { registerBench } from './commands/bench';
import { registerAudit } from './commands/audit';
import { registerRank } from './commands/rank';
import { registerCard } from './commands/card';
import { registerEncode } from './commands/encode';
import { checkThreads } from './options';

const program = new Command();
program.name('spartan').description('SPARTAN task memories for a frozen RoBERTa, trained on the CPU').version('0.1.0');
program.exitOverride();
registerTrain(program);
registerClassify(program);
registerEval(program);
registerExport(program);
registerDownload(program);
registerServe(program);
registerGlue(program);
registerRoutes(program);
registerBench(program);
registerAudit(program);
registerRank(program);
registerCard(program);
registerEncode(program);

// A child of bin/spartan.js, of the extension or of another engine process stops when its parent is gone.
exitWithParent();
// Every command's --threads is bounded (ONNX Runtime starts that many threads per session).
program.hook('preAction', (_program, command) => checkThreads(command.opts().threads));
const wantsJson = process.argv.includes('--json');

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof CommanderError) {
    process.exit(e.exitCode);
  }
  // An fs error (EACCES, ENOSPC, EISDIR, …) is about the user's files, not a bug: one line naming the path.
  const fsError =
    e instanceof Error && typeof (e as NodeJS.ErrnoException).syscall === 'string' && typeof (e as NodeJS.ErrnoException).code === 'string';
  const userError =
    fsError ||
    e instanceof SpartanError ||
    (e instanceof Error && (e.name === 'AbortError' || (e as { cause?: unknown }).cause instanceof SpartanError));
  const message = fsError
    ? describeFsError((e as NodeJS.ErrnoException).path ?? (e as NodeJS.ErrnoException).syscall!, e)
    : e instanceof Error
      ? e.message
      : String(e);
  if (wantsJson) process.stdout.write(JSON.stringify({ error: message }) + '\n');
  process.stderr.write(`spartan: ${userError ? message : ((e as Error)?.stack ?? message)}\n`);
  process.exit(userError ? 1 : 2);
});
