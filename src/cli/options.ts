/** Option parsing shared by the commands: numbers with checks, backbone aliases, thread defaults, common option sets. */
import * as os from 'os';
import * as path from 'path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { repoRoot, MAX_THREADS, QUANTIZE_MODES, SpartanError } from '../engine';

export function intOption(min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer ≥ ${min}, got "${value}"`);
    return n;
  };
}

export function floatOption(min: number, max = Infinity, inclusiveMin = true) {
  return (value: string): number => {
    const n = Number(value);
    const okMin = inclusiveMin ? n >= min : n > min;
    if (!Number.isFinite(n) || !okMin || n > max)
      throw new InvalidArgumentError(`expected a number in ${inclusiveMin ? '[' : '('}${min}, ${max}], got "${value}"`);
    return n;
  };
}

/** `embedded` (or nothing) means the small model shipped in models/; anything else is a folder or synthetic:NAME. */
export function resolveBackboneSpec(spec: string | undefined): string {
  if (!spec || spec === 'embedded') return path.join(repoRoot(), 'models', 'roberta-mini');
  return spec;
}

/** `--threads` of any command: at most MAX_THREADS (checked for every command by a hook in main.ts). */
export function checkThreads(threads: unknown): void {
  if (typeof threads === 'number' && threads > MAX_THREADS) {
    throw new SpartanError(`--threads ${threads} is more than ${MAX_THREADS}; this machine has ${defaultThreads()} CPU(s)`);
  }
}

export function defaultThreads(): number {
  return Math.max(1, (os as { availableParallelism?: () => number }).availableParallelism?.() ?? os.cpus().length);
}

/**
 * The options of the commands that run a saved memory over a JSONL file (eval, rank, routes): the memory, the
 * rows (`data`: their help), backbone, batch, threads and --skip-invalid, whose help says what the command does
 * with the rows (`use`, as in src/cli/rows.ts).
 */
export function addMemoryRunOptions(cmd: Command, o: { data: string; use: string; memory?: string }): Command {
  return cmd
    .requiredOption('--memory <file>', o.memory ?? 'the task memory (.safetensors)')
    .requiredOption('--data <file>', o.data)
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone the memory was trained for', 'embedded')
    .option('--batch-size <n>', 'examples per forward pass', intOption(1), 32)
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .option('--skip-invalid', `${o.use} the valid rows of a file that has invalid ones (they are reported)`);
}

/**
 * `--quantize none|int8` (train, classify, eval, serve, bench): int8 runs the frozen backbone linears through
 * ONNX Runtime's int8 GEMM (engine/models/quantize.ts). Without the flag, classify/eval/serve use what the memory
 * was trained with, and train uses float32 (or its `--init` memory's mode).
 */
export function quantizeOption(what = 'backbone precision (default: what the memory was trained with)'): Option {
  return new Option('--quantize <mode>', `${what}: int8 runs the frozen linears in int8`).choices(QUANTIZE_MODES);
}
