/**
 * The extension's context object (as rust-analyzer's `Ctx`): settings, the log, the status bar item, the active
 * memory, and the one way to run the engine (`runCommand`). Commands are factories `(ctx) => handler`, one file each
 * in `commands/`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vscode from 'vscode';
import { Config } from './config';
import { EngineServer, EngineServerDiedError, classifyInput, engineArgs, runEngine } from './engineProcess';
import { MemoryInfo, readMemoryInfo, readMemoryInfoAsync, listMemoriesAsync, newestMemoryFileSync } from './memoryFiles';
import type { RoutingView } from './routing';
import type { ClassifyResult, CommandName, EventOf, OptionsOf, ResultOf } from '../protocol/commands';
import type { PanelBench, TrainingCurve } from '../protocol/webview';

const ACTIVE_MEMORY_KEY = 'spartan.activeMemory';
const PAIR_KEY = 'spartan.memoryPairs';
const CURVES_KEY = 'spartan.trainingCurves';
const BENCH_KEY = 'spartan.benchReport';
const ROUTING_KEY = 'spartan.routing';

/** A training run's loss curve, as the panel draws it (the shape is part of the webview protocol). */
export type { TrainingCurve };

/** A progress event of one engine run, with the command that printed it (typed per command by the protocol). */
export type EngineEventRecord = { [C in CommandName]: { command: C; event: EventOf<C> } }[CommandName];

export class Ctx implements vscode.Disposable {
  readonly config = new Config();
  readonly log: vscode.LogOutputChannel;
  readonly statusBar: vscode.StatusBarItem;
  private readonly disposables: vscode.Disposable[] = [];
  private readonly eventEmitter = new vscode.EventEmitter<EngineEventRecord>();
  /** Every progress event of every engine run (tests and the benchmark panel listen). */
  readonly onDidEngineEvent = this.eventEmitter.event;
  private readonly stateEmitter = new vscode.EventEmitter<void>();
  /** Fires when memories, curves, the bench report or the routing report change. */
  readonly onDidChangeState = this.stateEmitter.event;
  /** The running fine-tune, cancellable from the notification or the Cancel Fine-tune command. */
  training: { task: string; abort: AbortController } | undefined;

  constructor(readonly extCtx: vscode.ExtensionContext) {
    this.log = vscode.window.createOutputChannel('Spartan', { log: true });
    this.statusBar = vscode.window.createStatusBarItem('spartan.activeMemory', vscode.StatusBarAlignment.Right, 100);
    this.statusBar.name = 'Spartan Active Memory';
    this.statusBar.command = 'spartan.selectMemory';
    this.disposables.push(this.log, this.statusBar, this.eventEmitter, this.stateEmitter);
    this.updateStatusBar();
  }

  get extensionPath(): string {
    return this.extCtx.extensionPath;
  }

  get cliPath(): string {
    return path.join(this.extCtx.extensionPath, 'dist', 'cli.js');
  }

  get embeddedBackbone(): string {
    return path.join(this.extCtx.extensionPath, 'models', 'roberta-mini');
  }

  /**
   * Runs one CLI command, typed by the protocol (src/protocol/commands.ts): its options become its flags
   * (`engineArgs`), its result and events have the shapes the CLI declares for that command. The one place where
   * the JSON the child printed is taken as that type. Logs the command line and fans the events out.
   */
  async runCommand<C extends CommandName>(
    command: C,
    options: OptionsOf<C>,
    opts: { signal?: AbortSignal; onEvent?: (e: EventOf<C>) => void; stdin?: string } = {},
  ): Promise<{ result: ResultOf<C>; seconds: number }> {
    const args = engineArgs(command, options);
    this.log.info(
      `engine: ${args.map((a) => (/\s/.test(a) || a.length > 80 ? JSON.stringify(a.length > 80 ? a.slice(0, 77) + '…' : a) : a)).join(' ')}`,
    );
    const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
    const r = await runEngine<ResultOf<C>>({
      cliPath: this.cliPath,
      args,
      cwd: ws && fs.existsSync(ws) ? ws : undefined,
      signal: opts.signal,
      stdin: opts.stdin,
      onEvent: (e) => {
        const event = e as EventOf<C>;
        opts.onEvent?.(event);
        this.eventEmitter.fire({ command, event } as EngineEventRecord);
      },
      onLog: (l) => this.log.warn(`engine: ${l}`),
    });
    this.log.info(`engine: ${command} finished in ${r.seconds.toFixed(2)} s`);
    return r;
  }

  private serverInstance: EngineServer | undefined;

  /** The long-lived `spartan serve` worker used by Classify Selection (started lazily, stops when idle). */
  server(): EngineServer {
    if (!this.serverInstance) {
      const ws = vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
      this.serverInstance = new EngineServer({
        cliPath: this.cliPath,
        cwd: ws && fs.existsSync(ws) ? ws : undefined,
        threads: this.config.threads || undefined,
        onLog: (l) => this.log.warn(`engine serve: ${l}`),
      });
    }
    return this.serverInstance;
  }

  resetServer(): void {
    this.serverInstance?.dispose();
    this.serverInstance = undefined;
  }

  /** Classifies one text through the serve worker, or a one-shot `classify` run when the worker cannot run. */
  async classify(backbone: string, memory: string, text: string, textPair?: string): Promise<{ result: ClassifyResult; seconds: number }> {
    const t0 = performance.now();
    try {
      const result = await this.server().request('classify', {
        backbone,
        memory,
        text,
        ...(textPair !== undefined ? { textPair } : {}),
      });
      return { result, seconds: (performance.now() - t0) / 1000 };
    } catch (e) {
      if (!(e instanceof EngineServerDiedError)) throw e;
      this.log.warn(`${e.message}; classifying with a one-shot engine run instead`);
      this.resetServer();
      return this.runCommand(
        'classify',
        { backbone, memory, stdinJson: true, threads: this.config.threads || undefined },
        { stdin: classifyInput(text, textPair) },
      );
    }
  }

  // ---- memories ----

  memoriesFolder(): string | undefined {
    return this.config.memoriesFolder();
  }

  /** The memories folder's files with their headers, read asynchronously (the extension host never blocks). */
  async listMemories() {
    const f = this.memoriesFolder();
    return f ? listMemoriesAsync(f) : [];
  }

  /**
   * The active memory's path: the one chosen last, else the newest regular file in the memories folder. Found with
   * `stat` alone: this runs at activation and on every status-bar refresh, so it opens no file.
   */
  activeMemoryPath(): string | undefined {
    const chosen = this.extCtx.workspaceState.get<string>(ACTIVE_MEMORY_KEY);
    if (chosen && fs.existsSync(chosen)) return chosen;
    const f = this.memoriesFolder();
    return f ? newestMemoryFileSync(f) : undefined;
  }

  activeMemory(): MemoryInfo | undefined {
    const p = this.activeMemoryPath();
    if (!p) return undefined;
    try {
      return this.withPair(readMemoryInfo(p));
    } catch (e) {
      this.log.warn(`cannot read memory ${p}: ${(e as Error).message}`);
      return undefined;
    }
  }

  withPair(info: MemoryInfo): MemoryInfo {
    if (info.pair !== undefined) return info;
    const pairs = this.extCtx.workspaceState.get<Record<string, boolean>>(PAIR_KEY) ?? {};
    return { ...info, pair: pairs[info.path] };
  }

  async rememberPair(memory: string, pair: boolean): Promise<void> {
    const pairs = { ...(this.extCtx.workspaceState.get<Record<string, boolean>>(PAIR_KEY) ?? {}), [memory]: pair };
    await this.extCtx.workspaceState.update(PAIR_KEY, pairs);
  }

  async setActiveMemory(p: string | undefined): Promise<void> {
    await this.extCtx.workspaceState.update(ACTIVE_MEMORY_KEY, p);
    this.updateStatusBar();
    this.stateEmitter.fire();
  }

  updateStatusBar(): void {
    const m = this.activeMemoryPath();
    if (!m) {
      this.statusBar.text = '$(circuit-board) Spartan: no memory';
      this.statusBar.tooltip = 'No Spartan memory yet. Click to select one, or run "Spartan: Fine-tune Memory from JSONL…".';
    } else {
      const name = path.basename(m, '.safetensors');
      this.statusBar.text = `$(circuit-board) ${name}`;
      const tip = `Spartan active memory: ${name}\n${m}`;
      this.statusBar.tooltip = tip + '\nClick to switch.';
      // The task and labels come from the file's header: read asynchronously (never blocking the extension host,
      // never from a special file), and not at all in an untrusted workspace, where its files are not opened.
      if (vscode.workspace.isTrusted) {
        const refresh = ++this.statusRefresh;
        void readMemoryInfoAsync(m).then(
          (info) => {
            if (refresh !== this.statusRefresh) return; // a newer refresh is under way
            this.statusBar.tooltip = `${tip}\n${info.taskType ?? ''}${info.labels.length ? ': ' + info.labels.join(', ') : ''}\nClick to switch.`;
          },
          () => undefined, // shown without the details
        );
      }
    }
    this.statusBar.show();
  }

  private statusRefresh = 0;

  // ---- curves and bench report (for the benchmark panel) ----

  curves(): TrainingCurve[] {
    return this.extCtx.workspaceState.get<TrainingCurve[]>(CURVES_KEY) ?? [];
  }

  async addCurve(c: TrainingCurve): Promise<void> {
    // keep at most 400 points per curve and the last 5 runs
    if (c.steps.length > 400) {
      const every = Math.ceil(c.steps.length / 400);
      c = { ...c, steps: c.steps.filter((_, i) => i % every === 0 || i === c.steps.length - 1) };
    }
    await this.extCtx.workspaceState.update(CURVES_KEY, [...this.curves(), c].slice(-5));
    this.stateEmitter.fire();
  }

  /** The last benchmark report (run, or loaded from a file whose `rows` were checked). */
  benchReport(): PanelBench | undefined {
    return this.extCtx.workspaceState.get<PanelBench>(BENCH_KEY);
  }

  async setBenchReport(r: PanelBench): Promise<void> {
    await this.extCtx.workspaceState.update(BENCH_KEY, r);
    this.stateEmitter.fire();
  }

  /** The last parent-routing report (the benchmark panel's heat map). */
  routing(): RoutingView | undefined {
    return this.extCtx.workspaceState.get<RoutingView>(ROUTING_KEY);
  }

  async setRouting(r: RoutingView): Promise<void> {
    await this.extCtx.workspaceState.update(ROUTING_KEY, r);
    this.stateEmitter.fire();
  }

  fireStateChange(): void {
    this.updateStatusBar();
    this.stateEmitter.fire();
  }

  dispose(): void {
    this.training?.abort.abort();
    this.resetServer();
    for (const d of this.disposables) d.dispose();
  }
}
