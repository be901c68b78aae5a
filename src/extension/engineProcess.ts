/**
 * Child-process plumbing for the Spartan CLI (`dist/cli.js`). No `vscode` import: the extension calls it,
 * and `test/extension/engineProcess.test.ts` runs it under plain Node against a fake CLI.
 *
 * Contract (docs/ARCHITECTURE.md): `node cli.js <command> ... --json`; progress events are JSON lines on
 * stderr with an "event" key; the result is one JSON object on stdout; exit code 1 with `{"error": …}` on
 * stdout (or stderr) for a user error. Cancelling kills the child: SIGTERM, then SIGKILL after a grace period.
 */
import { spawn } from 'node:child_process';
import { withTrainingEnv } from '../engine/light';
import type { CommandName, OptionsOf, ServeMethod, ServeProtocol, ServeRequest, ServeResponse } from '../protocol/commands';

/**
 * The engine's processes stop themselves when this (extension host) process is gone, so a crashed or killed
 * window never leaves a training run behind that replaces a memory later (exitWithParent in src/engine/runtime/childProcess.ts).
 */
const PARENT_ENV = { SPARTAN_PARENT_PID: String(process.pid) };

export interface EngineEvent {
  event: string;
  [key: string]: unknown;
}

export interface EngineRunOptions {
  /** Absolute path of `dist/cli.js`. */
  cliPath: string;
  /** The CLI command and its arguments, without `--json` (added here). */
  args: string[];
  /** The Node (or Electron) executable; defaults to `process.execPath`. */
  nodePath?: string;
  /** Extra environment; `ELECTRON_RUN_AS_NODE=1` is always set so Electron's binary acts as Node. */
  env?: Record<string, string | undefined>;
  cwd?: string;
  /** Called for every JSON event line on stderr. */
  onEvent?: (event: EngineEvent) => void;
  /** Called for every other (non-event) stderr line, e.g. warnings. */
  onLog?: (line: string) => void;
  /** Aborting kills the child (SIGTERM, then SIGKILL after `killGraceMs`). */
  signal?: AbortSignal;
  killGraceMs?: number;
  /** Written to the child's stdin (then closed): how user texts reach the CLI, never through argv (`ps` shows argv). */
  stdin?: string;
}

export interface EngineRunResult<T> {
  result: T;
  seconds: number;
}

/** A failure reported by the CLI itself (exit code ≠ 0); `message` is the CLI's message for users. */
export class EngineError extends Error {
  constructor(
    message: string,
    readonly exitCode: number | null,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = 'EngineError';
  }
}

/** The run was cancelled through the AbortSignal and the child was killed. */
export class EngineCancelledError extends Error {
  constructor() {
    super('Cancelled');
    this.name = 'EngineCancelledError';
  }
}

/** Splits a stream of chunks into lines, calling `onLine` for each complete one. */
export class LineSplitter {
  private buf = '';
  constructor(private readonly onLine: (line: string) => void) {}
  push(chunk: string): void {
    this.buf += chunk;
    let i: number;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i).replace(/\r$/, '');
      this.buf = this.buf.slice(i + 1);
      this.onLine(line);
    }
  }
  flush(): void {
    if (this.buf.length > 0) {
      const rest = this.buf;
      this.buf = '';
      this.onLine(rest);
    }
  }
}

/** Parses one stderr line as an event, or returns undefined when it is not a JSON object with an "event" key. */
export function parseEventLine(line: string): EngineEvent | undefined {
  const t = line.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const v = JSON.parse(t);
    if (v && typeof v === 'object' && !Array.isArray(v) && typeof v.event === 'string') return v as EngineEvent;
  } catch {
    /* not JSON */
  }
  return undefined;
}

/** Finds the result object in the CLI's stdout: the whole text, else its last line that parses as a JSON object. */
export function parseResult(stdout: string): Record<string, unknown> | undefined {
  const whole = stdout.trim();
  if (!whole) return undefined;
  try {
    const v = JSON.parse(whole);
    if (v && typeof v === 'object' && !Array.isArray(v)) return v;
  } catch {
    /* fall through to line-wise */
  }
  const lines = whole.split(/\r?\n/).reverse();
  for (const l of lines) {
    const t = l.trim();
    if (!t.startsWith('{')) continue;
    try {
      const v = JSON.parse(t);
      if (v && typeof v === 'object' && !Array.isArray(v)) return v;
    } catch {
      /* keep looking */
    }
  }
  return undefined;
}

/** Runs one CLI command to completion. Resolves with the parsed stdout object; rejects with EngineError/EngineCancelledError. */
export function runEngine<T = Record<string, unknown>>(opts: EngineRunOptions): Promise<EngineRunResult<T>> {
  const started = Date.now();
  const nodePath = opts.nodePath ?? process.execPath;
  const args = [opts.cliPath, ...opts.args];
  if (!args.includes('--json')) args.push('--json');
  return new Promise<EngineRunResult<T>>((resolve, reject) => {
    if (opts.signal?.aborted) {
      reject(new EngineCancelledError());
      return;
    }
    const child = spawn(nodePath, args, {
      cwd: opts.cwd,
      env: { ...withTrainingEnv(), ...opts.env, ELECTRON_RUN_AS_NODE: '1', ...PARENT_ENV },
      stdio: [opts.stdin !== undefined ? 'pipe' : 'ignore', 'pipe', 'pipe'],
      windowsHide: true,
    });
    if (opts.stdin !== undefined) {
      child.stdin!.on('error', () => {
        /* the child exited early; its exit status and stderr say why */
      });
      child.stdin!.end(opts.stdin);
    }
    let stdout = '';
    let stderrTail = '';
    let stderrError: string | undefined;
    let cancelled = false;
    let killTimer: NodeJS.Timeout | undefined;
    const errLines = new LineSplitter((line) => {
      stderrTail = (stderrTail + line + '\n').slice(-4000);
      const ev = parseEventLine(line);
      if (ev) {
        try {
          opts.onEvent?.(ev);
        } catch {
          /* a listener's bug must not kill the run */
        }
        return;
      }
      const t = line.trim();
      if (t.startsWith('{')) {
        try {
          const v = JSON.parse(t);
          if (v && typeof v.error === 'string') {
            stderrError = v.error;
            return;
          }
        } catch {
          /* plain line */
        }
      }
      if (t) opts.onLog?.(line);
    });
    child.stdout!.setEncoding('utf8');
    child.stderr!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      stdout += d;
    });
    child.stderr!.on('data', (d: string) => errLines.push(d));

    const onAbort = () => {
      if (child.exitCode !== null || cancelled) return;
      cancelled = true;
      child.kill('SIGTERM');
      killTimer = setTimeout(() => {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }, opts.killGraceMs ?? 3000);
    };
    opts.signal?.addEventListener('abort', onAbort, { once: true });

    child.on('error', (e) => {
      opts.signal?.removeEventListener('abort', onAbort);
      reject(new EngineError(`Could not start the Spartan engine (${nodePath}): ${e.message}`, null, ''));
    });
    child.on('close', (code, sig) => {
      errLines.flush();
      if (killTimer) clearTimeout(killTimer);
      opts.signal?.removeEventListener('abort', onAbort);
      if (cancelled) {
        reject(new EngineCancelledError());
        return;
      }
      const parsed = parseResult(stdout);
      if (code === 0 && parsed && typeof parsed.error !== 'string') {
        resolve({ result: parsed as T, seconds: (Date.now() - started) / 1000 });
        return;
      }
      let message =
        (parsed && typeof parsed.error === 'string' ? parsed.error : undefined) ??
        stderrError ??
        lastMeaningfulLine(stderrTail) ??
        (code === 0 ? 'The Spartan engine printed no result.' : undefined) ??
        `The Spartan engine exited with ${sig ? `signal ${sig}` : `code ${code}`}.`;
      if (code === 0 && !parsed) message = 'The Spartan engine printed no result.';
      reject(new EngineError(message, code, stderrTail));
    });
  });
}

function lastMeaningfulLine(text: string): string | undefined {
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !parseEventLine(l));
  return lines.length ? lines[lines.length - 1] : undefined;
}

/** Each command's options → its flags, in the order they are written (a key without a flag is a compile error). */
const FLAGS: { [C in CommandName]: { [K in keyof Required<OptionsOf<C>>]: string } } = {
  train: {
    backbone: '--backbone',
    data: '--data',
    out: '--out',
    dev: '--dev',
    epochs: '--epochs',
    lr: '--lr',
    batchSize: '--batch-size',
    maxLength: '--max-length',
    parents: '--parents',
    children: '--children',
    topK: '--top-k',
    temperature: '--temperature',
    dropout: '--dropout',
    seed: '--seed',
    threads: '--threads',
    quantize: '--quantize',
  },
  eval: { backbone: '--backbone', memory: '--memory', data: '--data', threads: '--threads' },
  classify: { backbone: '--backbone', memory: '--memory', stdinJson: '--stdin-json', threads: '--threads' },
  export: { backbone: '--backbone', memory: '--memory', onnx: '--onnx' },
  bench: {
    backbone: '--backbone',
    profiles: '--profiles',
    methods: '--methods',
    quick: '--quick',
    batch: '--batch',
    seq: '--seq',
    threads: '--threads',
  },
  routes: {
    backbone: '--backbone',
    memory: '--memory',
    data: '--data',
    layer: '--layer',
    skipInvalid: '--skip-invalid',
    threads: '--threads',
  },
  audit: {
    backbone: '--backbone',
    data: '--data',
    folds: '--folds',
    epochs: '--epochs',
    method: '--method',
    lr: '--lr',
    dropout: '--dropout',
    threads: '--threads',
  },
  rank: { backbone: '--backbone', memory: '--memory', data: '--data', threads: '--threads' },
  card: { memory: '--memory' },
  download: { repo: '--repo', dest: '--dest' },
};

/**
 * The argument list of one CLI command (without --json) from its typed options (src/protocol/commands.ts): a
 * string or finite number is the flag's value, `true` the bare flag, a list a comma-separated value. Undefined,
 * `false`, empty and non-finite options are left out, so the CLI's defaults apply.
 */
export function engineArgs<C extends CommandName>(command: C, options: OptionsOf<C>): string[] {
  const out: string[] = [command];
  const flags = FLAGS[command] as Record<string, string>;
  const values = options as Record<string, unknown>;
  for (const [key, flag] of Object.entries(flags)) {
    const v = values[key];
    if (v === true) out.push(flag);
    else if (typeof v === 'number' && Number.isFinite(v)) out.push(flag, String(v));
    else if (typeof v === 'string' && v !== '') out.push(flag, v);
    else if (Array.isArray(v) && v.length > 0) out.push(flag, v.join(','));
  }
  return out;
}

/** What a one-shot `classify` (`stdinJson`) reads on stdin. */
export function classifyInput(text: string, textPair?: string): string {
  return JSON.stringify(textPair !== undefined ? { text, text_pair: textPair } : { text });
}

/**
 * A long-lived `spartan serve` worker (JSON lines on stdin/stdout) so that Classify Selection does not pay for
 * starting Node and loading the backbone on every call. Started on the first request, stopped after `idleMs`
 * without requests and on dispose; a crash rejects the pending requests and the next request starts a new one.
 */
export class EngineServer {
  private child: import('node:child_process').ChildProcess | undefined;
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private idleTimer: NodeJS.Timeout | undefined;
  private stderrTail = '';

  constructor(
    private readonly opts: {
      cliPath: string;
      nodePath?: string;
      env?: Record<string, string | undefined>;
      cwd?: string;
      threads?: number;
      idleMs?: number;
      onLog?: (line: string) => void;
    },
  ) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** One request; resolves with the method's answer as the protocol types it (src/protocol/commands.ts). */
  request<M extends ServeMethod>(method: M, params: ServeProtocol[M]['params']): Promise<ServeProtocol[M]['result']> {
    const child = this.ensure();
    const id = this.nextId++;
    if (this.idleTimer) clearTimeout(this.idleTimer);
    return new Promise<ServeProtocol[M]['result']>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      const line = { id, method, params } as ServeRequest;
      child.stdin!.write(JSON.stringify(line) + '\n');
    });
  }

  private ensure(): import('node:child_process').ChildProcess {
    if (this.child) return this.child;
    const args = [this.opts.cliPath, 'serve'];
    if (this.opts.threads) args.push('--threads', String(this.opts.threads));
    const child = spawn(this.opts.nodePath ?? process.execPath, args, {
      cwd: this.opts.cwd,
      env: { ...withTrainingEnv(), ...this.opts.env, ELECTRON_RUN_AS_NODE: '1', ...PARENT_ENV },
      stdio: ['pipe', 'pipe', 'pipe'],
      windowsHide: true,
    });
    this.child = child;
    this.stderrTail = '';
    const out = new LineSplitter((line) => {
      const t = line.trim();
      if (!t) return;
      let msg: Partial<ServeResponse> & { error?: unknown };
      try {
        msg = JSON.parse(t);
      } catch {
        this.opts.onLog?.(line);
        return;
      }
      const p = typeof msg.id === 'number' ? this.pending.get(msg.id) : undefined;
      if (!p) return;
      this.pending.delete(msg.id as number);
      if (typeof msg.error === 'string') p.reject(new EngineError(msg.error, 1, ''));
      else p.resolve('result' in msg ? msg.result : undefined);
      this.armIdle();
    });
    const err = new LineSplitter((line) => {
      this.stderrTail = (this.stderrTail + line + '\n').slice(-4000);
      if (line.trim()) this.opts.onLog?.(line);
    });
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (d: string) => out.push(d));
    child.stderr.on('data', (d: string) => err.push(d));
    child.stdin.on('error', () => {
      /* reported through 'close' */
    });
    const fail = (why: string) => {
      if (this.child === child) this.child = undefined;
      const e = new EngineServerDiedError(why, this.stderrTail);
      for (const p of this.pending.values()) p.reject(e);
      this.pending.clear();
    };
    child.on('error', (e) => fail(`could not start the Spartan engine: ${e.message}`));
    child.on('close', (code, sig) => {
      err.flush();
      fail(
        `the Spartan engine server stopped (${sig ? `signal ${sig}` : `code ${code}`})${lastMeaningfulLine(this.stderrTail) ? ': ' + lastMeaningfulLine(this.stderrTail) : ''}`,
      );
    });
    return child;
  }

  private armIdle(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    if (this.pending.size > 0) return;
    this.idleTimer = setTimeout(() => this.dispose(), this.opts.idleMs ?? 5 * 60_000);
    this.idleTimer.unref?.();
  }

  dispose(): void {
    if (this.idleTimer) clearTimeout(this.idleTimer);
    const child = this.child;
    this.child = undefined;
    if (!child) return;
    try {
      const bye: ServeRequest = { id: 0, method: 'shutdown' };
      child.stdin!.end(JSON.stringify(bye) + '\n');
    } catch {
      /* already gone */
    }
    const t = setTimeout(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    }, 2000);
    t.unref?.();
    child.once('close', () => clearTimeout(t));
  }
}

/** The serve worker died or never started (e.g. a CLI without `serve`): callers may fall back to one-shot runs. */
export class EngineServerDiedError extends Error {
  constructor(
    message: string,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = 'EngineServerDiedError';
  }
}
