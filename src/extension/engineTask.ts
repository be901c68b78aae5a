/**
 * The pipeline every engine command shares, in one place: the workspace-trust check, the check that a file is on
 * disk (and saved, since the engine reads the disk), the backbone, a progress notification whose Cancel kills the
 * engine, and one way of reporting what went wrong (an engine failure with "Show Log", a refused input as a plain
 * message, a cancel as an optional notice, a declined prompt silently). A command is
 *
 *     runEngineTask(host, { trust: 'evaluate', what: 'evaluation' }, async (task) => { … task.run(…) … })
 *
 * and returns the body's value, or undefined when the task did not finish. No `vscode` import: what it needs
 * from VS Code is the `TaskHost` (src/extension/taskHost.ts builds it; test/extension/engineTask.test.ts passes
 * a fake), so its error and cancel handling is tested under plain Node.
 */
import { EngineCancelledError, EngineError } from './engineProcess';

/** A file as the host names it (a `vscode.Uri` is one). */
export interface FileRef {
  scheme: string;
  fsPath: string;
}

export interface ProgressReport {
  message?: string;
  /** Percent of the whole task done since the last report. */
  increment?: number;
}

/** What the task pipeline needs from the editor. */
export interface TaskHost {
  isTrusted(): boolean;
  /** Tells the user that Spartan does not `what` in an untrusted workspace (and how to trust it). */
  warnUntrusted(what: string): void;
  showError(message: string, ...actions: string[]): Promise<string | undefined>;
  showInfo(message: string): void;
  showLog(): void;
  readonly log: { info(line: string): void; error(line: string): void; debug(line: string): void };
  /**
   * Runs `work` under a progress indicator titled `title` (a notification, or the status bar with `window`); a
   * cancellable one aborts `signal` when the user presses Cancel.
   */
  withProgress<T>(
    o: { title: string; cancellable: boolean; location?: 'notification' | 'window' },
    work: (report: (p: ProgressReport) => void, signal: AbortSignal) => Promise<T>,
  ): Promise<T>;
  /** The backbone folder the settings name, after any download or fallback the user agreed to; undefined if declined. */
  resolveBackbone(): Promise<string | undefined>;
  /** The file's text as the engine will read it, after saving an editor's unsaved changes. */
  readForEngine(file: FileRef): Promise<string>;
}

/** Ends a task with a message for the user (bad input, a file not on disk): not an engine failure, no log button. */
export class TaskRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TaskRefusal';
  }
}

/** Ends a task silently: the user dismissed a prompt, or was already told why (e.g. by the backbone resolver). */
export class TaskDeclined extends Error {
  constructor() {
    super('declined');
    this.name = 'TaskDeclined';
  }
}

export interface EngineTaskSpec {
  /** What the untrusted-workspace warning says Spartan does not do ("fine-tune"); absent: no trust check. */
  trust?: string;
  /** The task in an error message ("Spartan: evaluation failed: …"); a body may make it more precise. */
  what: string;
  /** Shown when the user cancels the engine run (nothing when absent); a function is asked after the run ended. */
  cancelled?: string | (() => string);
}

/** The handle a task body works with. */
export class EngineTask {
  what: string;
  cancelled: string | (() => string) | undefined;

  constructor(
    readonly host: TaskHost,
    spec: EngineTaskSpec,
  ) {
    this.what = spec.what;
    this.cancelled = spec.cancelled;
  }

  /** Stops the task with `message` shown as an error. */
  refuse(message: string): never {
    throw new TaskRefusal(message);
  }

  /** Stops the task without a message. */
  decline(): never {
    throw new TaskDeclined();
  }

  /** `value`, or a silent stop when a prompt gave nothing. */
  need<T>(value: T | undefined): T {
    if (value === undefined) this.decline();
    return value;
  }

  /**
   * The file the engine is to read: none (a dismissed picker) stops silently, one that is not on disk is refused
   * ("Spartan `verb` files on disk: …").
   */
  onDisk<F extends FileRef>(file: F | undefined, verb: string): F {
    const f = this.need(file);
    if (f.scheme !== 'file') this.refuse(`Spartan ${verb} files on disk: save the JSONL file first.`);
    return f;
  }

  /** The file's text as the engine will read it (a bounded regular file), its editor's unsaved changes saved first. */
  read(file: FileRef): Promise<string> {
    return this.host.readForEngine(file);
  }

  /** The backbone folder, or a silent stop (the resolver already told the user what is missing). */
  async backbone(): Promise<string> {
    return this.need(await this.host.resolveBackbone());
  }

  /**
   * Runs the engine under a progress notification (cancellable unless told otherwise: Cancel aborts `signal`,
   * which kills the child; the task then ends with its `cancelled` notice).
   */
  run<T>(
    title: string,
    work: (signal: AbortSignal, report: (p: ProgressReport) => void) => Promise<T>,
    o: { cancellable?: boolean; location?: 'notification' | 'window' } = {},
  ): Promise<T> {
    return this.host.withProgress({ title, cancellable: o.cancellable ?? true, location: o.location }, (report, signal) =>
      work(signal, report),
    );
  }

  /** `read()`'s value; what it throws (an unreadable memory file, a bad header) is refused as "Spartan: …". */
  guard<T>(read: () => T): T {
    try {
      return read();
    } catch (e) {
      this.refuse(`Spartan: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
}

/**
 * Runs one command's task: the trust check, then `body`; whatever ends it early is reported once, here. Returns
 * the body's value, or undefined when the workspace is untrusted or the task was refused, declined, cancelled or
 * failed.
 */
export async function runEngineTask<T>(
  host: TaskHost,
  spec: EngineTaskSpec,
  body: (task: EngineTask) => Promise<T>,
): Promise<T | undefined> {
  if (spec.trust !== undefined && !host.isTrusted()) {
    host.warnUntrusted(spec.trust);
    return undefined;
  }
  const task = new EngineTask(host, spec);
  try {
    return await body(task);
  } catch (e) {
    reportTaskEnd(host, task, e);
    return undefined;
  }
}

/** How a task that threw is reported: see the file header. */
export function reportTaskEnd(host: TaskHost, task: { what: string; cancelled?: string | (() => string) }, e: unknown): void {
  if (e instanceof TaskDeclined) return;
  if (e instanceof TaskRefusal) {
    void host.showError(e.message);
    return;
  }
  if (e instanceof EngineCancelledError) {
    host.log.info(`${task.what} cancelled`);
    const notice = typeof task.cancelled === 'function' ? task.cancelled() : task.cancelled;
    if (notice) host.showInfo(notice);
    return;
  }
  const msg = e instanceof Error ? e.message : String(e);
  host.log.error(`${task.what} failed: ${msg}`);
  if (e instanceof EngineError && e.stderrTail) host.log.debug(e.stderrTail);
  void host.showError(`Spartan: ${task.what} failed: ${msg}`, 'Show Log').then((pick) => {
    if (pick === 'Show Log') host.showLog();
  });
}
