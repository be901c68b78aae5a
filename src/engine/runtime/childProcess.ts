/**
 * Every process the engine starts of itself, on one definition: `bin/spartan.js` re-running the CLI with the
 * training tunables, `glue run --parallel` shards, `spartan bench`'s measurement workers and `scripts/bench.ts`'s
 * phases. Both sides of the contract are here:
 *  - the parent side (`spawnEngine`): "this program again with these arguments" (`selfEntry`: node, its flags, and
 *    dist/cli.js, bin/spartan.js or a .ts file run by tsx, whichever started this process), with the engine's
 *    environment (the glibc tunables of processEnv.ts and this process's pid), JSON lines on stdout and stderr
 *    parsed into typed events, cancel (the child's whole process group: a CLI child may have started workers of
 *    its own), and the exit status with the end of stderr in words;
 *  - the child side (`exitWithParent`, `parentGone`): a child told its parent's pid stops itself when that parent
 *    is gone, because a SIGKILL of the parent (`timeout -s KILL`, the OOM killer) cannot be forwarded and an
 *    orphaned `train` would otherwise replace `--out` after its caller was gone.
 * Lives in the engine, not the CLI or the lab, because all four callers (and the scripts, which import only the
 * engine) use it; it loads no native code, so `bin/spartan.js` runs it from its own small bundle
 * (dist/childProcess.js) before the CLI is loaded. The extension keeps its own spawner (src/extension/engineProcess.ts).
 */
import { spawn, ChildProcess } from 'node:child_process';
import * as os from 'node:os';
import * as readline from 'node:readline';
import { withTrainingEnv } from './processEnv';

/** The variable that names a child's parent (read by `exitWithParent` in the child). */
export const PARENT_PID_ENV = 'SPARTAN_PARENT_PID';

/** A program to start: the executable and the arguments before the command's own. */
export interface Entry {
  command: string;
  args: string[];
}

/**
 * This process's program again: the same node, its flags and its script. Without --inspect*: a second debugger
 * on the same port would stop the child from starting.
 */
export function selfEntry(): Entry {
  return { command: process.execPath, args: [...process.execArgv.filter((a) => !a.startsWith('--inspect')), process.argv[1]] };
}

/** The environment of an engine child: `base` with the training tunables (one already there wins), this pid, `extra`. */
export function engineChildEnv(extra: NodeJS.ProcessEnv = {}, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...withTrainingEnv(base), [PARENT_PID_ENV]: String(process.pid), ...extra };
}

/** How a child ended: its exit code or signal, or why it could not be started. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** The spawn error (e.g. the executable is missing); then code and signal are null. */
  startError?: string;
}

/** A child's end in words: "exited with code 3", "killed by SIGKILL", "could not be started: …". */
export function describeExit(e: ChildExit): string {
  if (e.startError !== undefined) return `could not be started: ${e.startError}`;
  if (e.signal) return `killed by ${e.signal}`;
  return `exited with code ${e.code}`;
}

/** The exit status a shell reports for `e` (128 + signal number when killed). */
export function exitStatusOf(e: ChildExit): number {
  if (e.code !== null) return e.code;
  return 128 + ((e.signal && os.constants.signals[e.signal]) || 1);
}

export interface SpawnEngineOptions<T> {
  /** The child's stdin: 'pipe' for a request/reply protocol (`send`), else 'ignore' (default) or 'inherit'. */
  stdin?: 'pipe' | 'ignore' | 'inherit';
  /** 'json' (default): stdout carries JSON lines only, read with `next()` / `result()`; or passed through / dropped. */
  stdout?: 'json' | 'inherit' | 'ignore';
  /** 'json' (default): JSON lines become events, other lines are logs, all are kept for `tail()`; or passed through. */
  stderr?: 'json' | 'inherit';
  /** Variables added to the engine environment (engineChildEnv). */
  env?: NodeJS.ProcessEnv;
  /** A command that prepares the process and then execs the rest (the bench's constraint wrapper, constraints.ts). */
  via?: string[];
  /** Own process group (default true), so that `cancel` also reaches what the child started. */
  group?: boolean;
  /** Every JSON object line, from either stream. */
  onEvent?: (event: T, stream: 'stdout' | 'stderr') => void;
  /** Every other non-empty stderr line. */
  onLog?: (line: string) => void;
  /** Aborting cancels the child (SIGTERM, then SIGKILL after `killGraceMs`). */
  signal?: AbortSignal;
  killGraceMs?: number;
}

/** A child that ended badly, with its exit in words and the end of its stderr. */
export class ChildFailed extends Error {
  constructor(
    message: string,
    readonly exit: ChildExit,
    readonly stderrTail: string,
  ) {
    super(message);
    this.name = 'ChildFailed';
  }
}

type StdoutItem<T> = { json: T } | { text: string };

/** A running engine child (see the file header); created by `spawnEngine`. */
export class EngineChild<T = Record<string, unknown>> {
  /** Resolves once the process has exited (or failed to start). */
  readonly exit: Promise<ChildExit>;
  /** The exit, once known (synchronously, for messages). */
  exitStatus: ChildExit | null = null;
  /** The last `{"error": …}` line the child printed (the CLI's user error with --json; a worker's failure). */
  reportedError: string | undefined;
  private readonly queue: StdoutItem<T>[] = [];
  private waiting: ((item: StdoutItem<T> | null) => void) | null = null;
  private stdoutEnded: boolean;
  private stderrText = '';
  private closed = false;

  constructor(
    /** The node ChildProcess (its stdio as spawnEngine set it up). */
    readonly proc: ChildProcess,
    private readonly opts: SpawnEngineOptions<T>,
  ) {
    this.stdoutEnded = opts.stdout === 'inherit' || opts.stdout === 'ignore';
    if (proc.stdout) {
      readline
        .createInterface({ input: proc.stdout })
        .on('line', (line) => this.onStdoutLine(line))
        .on('close', () => {
          this.stdoutEnded = true;
          this.deliver(null);
        });
    }
    if (proc.stderr) readline.createInterface({ input: proc.stderr }).on('line', (line) => this.onStderrLine(line));
    proc.stdin?.on('error', () => {
      // EPIPE when the child died: reported through its exit status.
    });
    this.exit = new Promise<ChildExit>((resolve) => {
      const done = (e: ChildExit) => {
        if (this.exitStatus) return;
        this.exitStatus = e;
        resolve(e);
      };
      proc.once('exit', (code, signal) => done({ code, signal }));
      proc.once('error', (e) => {
        // Could not be started at all: no 'exit' follows, and the streams may never end.
        done({ code: null, signal: null, startError: e.message });
        this.stdoutEnded = true;
        this.deliver(null);
      });
    });
    proc.once('close', () => (this.closed = true));
    if (opts.signal) {
      const onAbort = () => this.cancel('SIGTERM');
      if (opts.signal.aborted) onAbort();
      else {
        opts.signal.addEventListener('abort', onAbort, { once: true });
        void this.exit.then(() => opts.signal!.removeEventListener('abort', onAbort));
      }
    }
  }

  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** Writes one line to the child's stdin (stdin: 'pipe'). */
  send(line: string): void {
    this.proc.stdin?.write(line.endsWith('\n') ? line : line + '\n');
  }

  /**
   * The next JSON line of stdout, or null once stdout has ended (the child exited). A line that is not JSON is
   * an error: with stdout: 'json' the child promised JSON lines only.
   */
  async next(): Promise<T | null> {
    const item = this.queue.length
      ? this.queue.shift()!
      : this.stdoutEnded
        ? null
        : await new Promise<StdoutItem<T> | null>((r) => (this.waiting = r));
    if (item === null) return null;
    if ('text' in item) throw new Error(`the child printed a line that is not JSON: ${item.text.slice(0, 200)}`);
    return item.json;
  }

  /**
   * Waits for the end; the last JSON line of stdout (the command's result). A child that exits other than with
   * code 0, or prints no JSON, is a ChildFailed naming `what`.
   */
  async result(what = 'the child process'): Promise<T> {
    let last: T | undefined;
    for (let item = await this.next(); item !== null; item = await this.next()) last = item;
    const exit = await this.exit;
    if (exit.code !== 0 || last === undefined) {
      const why = exit.code === 0 ? 'printed no result' : describeExit(exit);
      throw new ChildFailed(this.failure(what, why), exit, this.stderrText);
    }
    return last;
  }

  /** The last `lines` non-empty lines of stderr, joined by " | " (what a message about a failure quotes). */
  tail(lines = 3): string {
    return this.stderrText.trim().split('\n').filter(Boolean).slice(-lines).join(' | ');
  }

  /** "`what` exited with code 1: <its error>; stderr: <tail>" (why defaults to the exit in words). */
  failure(what: string, why = this.exitStatus ? describeExit(this.exitStatus) : 'stopped answering'): string {
    const parts = [`${what} ${why}`];
    if (this.reportedError) parts.push(this.reportedError);
    const tail = this.tail();
    if (tail) parts.push(`stderr: ${tail}`);
    return parts.join('; ');
  }

  /**
   * Stops the child and its process group: `signal` now, SIGKILL after the grace period if it is still running
   * (SIGKILL itself: no grace). Synchronous, so exit handlers can call it.
   */
  cancel(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exitStatus && this.closed) return;
    this.kill(signal);
    if (signal !== 'SIGKILL') {
      const timer = setTimeout(() => {
        if (!this.exitStatus) this.kill('SIGKILL');
      }, this.opts.killGraceMs ?? 3000);
      timer.unref();
      void this.exit.then(() => clearTimeout(timer));
    }
  }

  private kill(signal: NodeJS.Signals): void {
    const pid = this.proc.pid;
    if (pid === undefined) return;
    try {
      if (this.opts.group !== false) process.kill(-pid, signal);
      else this.proc.kill(signal);
    } catch {
      // already gone
    }
  }

  private onStdoutLine(line: string): void {
    if (!line.trim()) return;
    const json = parseJsonObject<T>(line);
    if (json) {
      this.noteError(json);
      this.opts.onEvent?.(json, 'stdout');
    }
    this.deliver(json ? { json } : { text: line });
  }

  private onStderrLine(line: string): void {
    this.stderrText = (this.stderrText + line + '\n').slice(-4000);
    if (!line.trim()) return;
    const json = parseJsonObject<T>(line);
    if (json) {
      this.noteError(json);
      this.opts.onEvent?.(json, 'stderr');
    } else this.opts.onLog?.(line);
  }

  private noteError(json: T): void {
    const e = (json as { error?: unknown }).error;
    if (typeof e === 'string') this.reportedError = e;
  }

  private deliver(item: StdoutItem<T> | null): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = null;
      w(item);
    } else if (item) this.queue.push(item);
  }
}

/** A line that is one JSON object, else undefined. */
function parseJsonObject<T>(line: string): T | undefined {
  const t = line.trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(t);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as T) : undefined;
  } catch {
    return undefined;
  }
}

/** Starts `entry args` as an engine child (see the file header and SpawnEngineOptions). */
export function spawnEngine<T = Record<string, unknown>>(entry: Entry, args: string[], opts: SpawnEngineOptions<T> = {}): EngineChild<T> {
  const stdout = opts.stdout ?? 'json';
  const stderr = opts.stderr ?? 'json';
  const argv = [...entry.args, ...args];
  const [command, ...rest] = opts.via ? [...opts.via, entry.command, ...argv] : [entry.command, ...argv];
  const child = spawn(command, rest, {
    env: engineChildEnv(opts.env),
    stdio: [opts.stdin ?? 'ignore', stdout === 'json' ? 'pipe' : stdout, stderr === 'json' ? 'pipe' : stderr],
    detached: opts.group !== false,
  });
  return new EngineChild<T>(child, { ...opts, stdout, stderr });
}

/**
 * `bin/spartan.js`'s job: glibc reads its tunables at start-up, so a CLI started without GLIBC_TUNABLES re-runs
 * itself once with them (`cli` as a child in this process's group, stdio shared), forwarding signals and its exit
 * status. Returns false when no re-run is needed (the tunables are set, or not Linux): then the caller loads the CLI.
 */
export function rerunWithTrainingEnv(cli: string): boolean {
  if (process.env.GLIBC_TUNABLES !== undefined || process.platform !== 'linux') return false;
  const child = spawnEngine({ command: process.execPath, args: [cli] }, process.argv.slice(2), {
    stdin: 'inherit',
    stdout: 'inherit',
    stderr: 'inherit',
    group: false,
  });
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT'] as const) process.on(signal, () => child.proc.kill(signal));
  void child.exit.then((e) => process.exit(exitStatusOf(e)));
  return true;
}

// ------------------------------------------------------------------ the child side

const POLL_MS = 200;

/** The parent's pid, read when this module loads (before exitWithParent removes it from the environment). */
const parentPid =
  Number.isInteger(Number(process.env[PARENT_PID_ENV])) && Number(process.env[PARENT_PID_ENV]) > 0
    ? Number(process.env[PARENT_PID_ENV])
    : undefined;

/**
 * In a child started by `spawnEngine` (or by the extension): stops this process with SIGTERM once the parent named
 * at start-up is gone (re-parented). Commands that handle SIGTERM (train) stop at their next step without saving;
 * the others end at once; a handler that takes SIGTERM and keeps going is ended 0.2 s later.
 */
export function exitWithParent(): void {
  const expected = parentPid;
  if (expected === undefined) return;
  // Not for our own children: spawnEngine names this process to them.
  delete process.env[PARENT_PID_ENV];
  if (process.ppid !== expected) {
    process.kill(process.pid, 'SIGTERM'); // the parent was gone before we started
    return;
  }
  let signalled = false;
  const timer = setInterval(() => {
    if (process.ppid === expected) return;
    if (!signalled) {
      signalled = true;
      process.kill(process.pid, 'SIGTERM');
    } else {
      process.exit(129);
    }
  }, POLL_MS);
  timer.unref();
}

/** True once the parent named at start-up is gone (for a last check before an irreversible step such as a save). */
export function parentGone(): boolean {
  return parentPid !== undefined && process.ppid !== parentPid;
}
