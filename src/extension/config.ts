/**
 * Typed access to the `spartan.*` settings (like rust-analyzer's `Config`): one place that knows the keys,
 * their defaults (the SPARTAN paper's) and how they map onto the CLI's options.
 */
import * as path from 'node:path';
import * as vscode from 'vscode';
import type { TrainOptions } from '../protocol/commands';
import { TRAINING_DEFAULTS, type TrainingSettings } from './trainingSettings';
import { QUANTIZE_MODES, type QuantizeMode } from '../engine/light';

export { TRAINING_DEFAULTS, type TrainingSettings };

export const SECTION = 'spartan';

export class Config {
  private cfg(): vscode.WorkspaceConfiguration {
    return vscode.workspace.getConfiguration(SECTION);
  }

  /** `roberta-base` (downloaded on first use), `embedded` (the small model shipped inside the extension) or a folder. */
  get backbone(): string {
    return (this.cfg().get<string>('backbone') ?? 'roberta-base').trim() || 'roberta-base';
  }

  /** Memories folder, relative to the first workspace folder unless absolute. */
  get memoriesFolderSetting(): string {
    return this.cfg().get<string>('memoriesFolder') || '.spartan/memories';
  }

  get threads(): number {
    const t = this.cfg().get<number>('threads') ?? 0;
    return Number.isFinite(t) && t > 0 ? Math.floor(t) : 0;
  }

  /** Backbone precision for fine-tuning (`--quantize`); classify/eval use each memory's own. */
  get quantize(): QuantizeMode {
    const q = this.cfg().get<string>('quantize');
    return (QUANTIZE_MODES as readonly string[]).includes(q ?? '') ? (q as QuantizeMode) : 'none';
  }

  get diagnosticsEnabled(): boolean {
    return this.cfg().get<boolean>('diagnostics.enabled') ?? true;
  }

  get training(): TrainingSettings {
    const c = this.cfg();
    const out = {} as TrainingSettings;
    for (const k of Object.keys(TRAINING_DEFAULTS) as (keyof TrainingSettings)[]) {
      const v = c.get<number>(`training.${k}`);
      out[k] = typeof v === 'number' && Number.isFinite(v) ? v : TRAINING_DEFAULTS[k];
    }
    return out;
  }

  /** The training settings as CLI options (backbone/data/out/dev are filled in by the caller). */
  trainOptions(): Omit<TrainOptions, 'backbone' | 'data' | 'out' | 'dev'> {
    const t = this.training;
    return {
      epochs: t.epochs,
      lr: t.learningRate,
      batchSize: t.batchSize,
      maxLength: t.maxLength,
      parents: t.parents,
      children: t.children,
      topK: t.topK,
      temperature: t.temperature,
      dropout: t.dropout,
      seed: t.seed,
      threads: this.threads || undefined,
      quantize: this.quantize === 'none' ? undefined : this.quantize,
    };
  }

  /** Absolute memories folder, or undefined with no workspace folder and a relative setting. */
  memoriesFolder(): string | undefined {
    const s = this.memoriesFolderSetting;
    if (path.isAbsolute(s)) return s;
    const ws = vscode.workspace.workspaceFolders?.[0];
    return ws ? path.join(ws.uri.fsPath, s) : undefined;
  }
}
