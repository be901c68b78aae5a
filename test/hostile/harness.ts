/**
 * Shared by the hostile-input suites (test/hostile*.test.ts): running the CLI as a user would, and the assertions
 * every case makes — the exit status, one message line that names the file or field, no stack trace, and an earlier
 * memory left byte-identical.
 */
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../../src/engine/models/backbone';
import { encodeSafetensors, readSafetensors } from '../../src/engine/io/safetensors';
import type { TensorMap } from '../../src/engine/types';
import { withTrainingEnv } from '../../src/engine/runtime/processEnv';

export const ROOT = repoRoot();
export const CLI = path.join(ROOT, 'bin', 'spartan.js');
export const skip = fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? false : 'run `npm run build` first';
/** The backbone of every case: seeded random weights of a 2-layer, 64-wide RoBERTa, built in milliseconds. */
export const TINY = 'synthetic:tiny';

export function scratch(prefix: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `spartan-hostile-${prefix}-`));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** `spartan ARGS --threads 1` to completion (stdin from `input`), bounded by `timeoutMs` so a hang fails the case. */
export function run(
  args: string[],
  opts: { input?: string | Buffer; timeoutMs?: number; env?: Record<string, string>; threads?: false } = {},
): RunResult {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args, ...(opts.threads === false ? [] : ['--threads', '1'])], {
    input: opts.input ?? '',
    encoding: 'utf8',
    timeout: opts.timeoutMs ?? 60_000,
    maxBuffer: 64 * 1024 * 1024,
    // With the tunables already set, bin/spartan.js runs the CLI in its own process (no second Node start-up).
    env: { ...withTrainingEnv(), ...opts.env },
  });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr, ms: Date.now() - t0 };
}

/** As `run`, without blocking this process's event loop (for cases that talk to a server in this process). */
export function runAsync(args: string[], opts: { env?: Record<string, string>; timeoutMs?: number } = {}): Promise<RunResult> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('close', (status, signal) => {
      clearTimeout(t);
      resolve({ status, signal, stdout, stderr, ms: Date.now() - t0 });
    });
  });
}

const STACK = /\n\s+at .+\(|^\s+at .+:\d+:\d+\)?$/m;

/**
 * Asserts a refused input: exit status `status` (1 by default, never a signal), exactly one message line on stderr
 * (`spartan: …`; JSON progress lines are allowed around it) that matches every pattern in `names`, no stack trace,
 * and, with --json, the same message as `{"error"}` on stdout. Returns the message.
 */
export function refused(r: RunResult, names: (string | RegExp)[], status = 1): string {
  const context = `exit ${r.status} signal ${r.signal}\nstderr:\n${r.stderr.slice(-3000)}`;
  assert.equal(r.signal, null, `killed by a signal: ${context}`);
  assert.equal(r.status, status, context);
  assert.doesNotMatch(r.stderr, STACK, `a stack trace was printed: ${context}`);
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('{'));
  assert.equal(lines.length, 1, `expected one message line: ${context}`);
  const [line] = lines;
  assert.match(line, /^spartan: /, context);
  for (const n of names) {
    if (typeof n === 'string') assert.ok(line.includes(n), `message does not name ${JSON.stringify(n)}: ${line}`);
    else assert.match(line, n);
  }
  const json = r.stdout
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('{"error"'));
  if (json.length) assert.equal(JSON.parse(json[json.length - 1]).error, line.slice('spartan: '.length));
  return line;
}

/** The last JSON object on stdout (a --json result). */
export function result(r: RunResult): any {
  assert.equal(r.status, 0, `exit ${r.status} signal ${r.signal}\n${r.stderr.slice(-3000)}`);
  assert.doesNotMatch(r.stderr, STACK);
  const last = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last);
}

/** Snapshot of a file's bytes (and mode); `.unchanged()` asserts it is byte-identical (an earlier memory survived). */
export function guard(file: string): { unchanged(): void } {
  const bytes = fs.readFileSync(file);
  const mode = fs.statSync(file).mode;
  return {
    unchanged() {
      assert.ok(fs.existsSync(file), `${file} is gone`);
      assert.ok(fs.readFileSync(file).equals(bytes), `${file} changed`);
      assert.equal(fs.statSync(file).mode, mode, `${file} changed its mode`);
    },
  };
}

/** Temp files a write left next to `file`. */
export function tempFilesOf(file: string): string[] {
  const base = `.${path.basename(file)}.tmp-`;
  return fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith(base));
}

export function jsonl(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** n rows of a two-label task ("neg"/"pos" unless other names are given). */
export function labelled(n: number, labels: [string, string] = ['neg', 'pos'], pair = false): object[] {
  return Array.from({ length: n }, (_, i) => ({
    text: `sample text number ${i} ${i % 2 ? 'good' : 'bad'}`,
    label: labels[i % 2],
    ...(pair ? { text_pair: `other ${i}` } : {}),
  }));
}

/** A memory saved from the initial tensors (`--steps 0`): a real file in seconds. */
export function makeMemory(dir: string, name: string, opts: { pair?: boolean; extra?: string[] } = {}): string {
  const data = path.join(dir, `${name}.jsonl`);
  fs.writeFileSync(data, jsonl(labelled(8, ['neg', 'pos'], opts.pair)));
  const out = path.join(dir, `${name}.safetensors`);
  const r = run(['train', '--backbone', TINY, '--data', data, '--out', out, '--steps', '0', '--json', ...(opts.extra ?? [])]);
  result(r);
  return out;
}

/** Rewrites a memory with edited metadata and/or tensors (a hand-edited or damaged file). */
export function tamper(
  src: string,
  dest: string,
  edit: { metadata?: (m: Record<string, string>) => void; tensors?: (t: TensorMap) => void },
): string {
  const f = readSafetensors(src);
  const metadata = { ...f.metadata };
  const tensors: TensorMap = new Map([...f.tensors].map(([n, t]) => [n, { shape: [...t.shape], data: Float32Array.from(t.data) }]));
  edit.metadata?.(metadata);
  edit.tensors?.(tensors);
  fs.writeFileSync(dest, encodeSafetensors(tensors, 'float32', metadata));
  return dest;
}

/** Whether a process with this pid exists (signal 0 checks without signalling). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** A pid no process has (for a stale temp file's name). */
export function deadPid(): number {
  for (let pid = 4_000_000; ; pid--) {
    try {
      process.kill(pid, 0);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ESRCH') return pid;
    }
  }
}
