/**
 * The training options `spartan train`, `audit` and `glue run` share, declared once, with the engine's defaults
 * (engine/training/defaults.ts) and the paper's memory geometry, and mapped once onto the engine's names.
 */
import { Command } from 'commander';
import { DEFAULT_GEOMETRY, MemoryGeometry, TRAINING_DEFAULTS, TrainConfig } from '../engine';
import { floatOption, intOption } from './options';

/** What the shared options parse to (commander's camel-cased keys). */
export interface SharedTrainingOptions {
  parents: number;
  children: number;
  topK: number;
  temperature: number;
  batchSize: number;
  maxLength: number;
  dropout: number;
  warmup: number;
  weightDecay: number;
  clip: number;
}

/** Adds the memory geometry, batch, length, dropout and AdamW options to `cmd`. */
export function addTrainingOptions(cmd: Command): Command {
  const d = TRAINING_DEFAULTS;
  return cmd
    .option('--parents <n>', 'SPARTAN parent cells per layer (Np)', intOption(1), DEFAULT_GEOMETRY.parents)
    .option('--children <n>', 'SPARTAN children per parent (Nc)', intOption(1), DEFAULT_GEOMETRY.children)
    .option('--top-k <n>', 'SPARTAN parents kept per token (K)', intOption(1), DEFAULT_GEOMETRY.topK)
    .option(
      '--temperature <t>',
      'softmax temperature of the SPARTAN children (τ)',
      floatOption(0, Infinity, false),
      DEFAULT_GEOMETRY.temperature,
    )
    .option('--batch-size <n>', 'examples per step', intOption(1), d.batchSize)
    .option('--max-length <n>', 'tokens per example, longer texts are truncated', intOption(4), d.maxLength)
    .option('--dropout <p>', 'dropout in the backbone and head while training', floatOption(0, 0.9), d.dropout)
    .option('--warmup <fraction>', 'share of steps with linear warm-up (AdamW)', floatOption(0, 1), d.warmupRatio)
    .option('--weight-decay <w>', 'AdamW weight decay (not on biases and LayerNorms)', floatOption(0), d.weightDecay)
    .option('--clip <norm>', 'gradient-norm clipping (AdamW); 0 disables', floatOption(0), d.clipNorm);
}

/** The memory geometry the shared options give. */
export function geometryOf(o: SharedTrainingOptions): MemoryGeometry {
  return { parents: o.parents, children: o.children, topK: o.topK, temperature: o.temperature };
}

/** The engine's configuration fields the shared options give (the rest is each command's). */
export function sharedTrainConfig(
  o: SharedTrainingOptions,
): Pick<TrainConfig, 'batchSize' | 'maxLength' | 'dropout' | 'warmupRatio' | 'weightDecay' | 'clipNorm'> {
  return {
    batchSize: o.batchSize,
    maxLength: o.maxLength,
    dropout: o.dropout,
    warmupRatio: o.warmup,
    weightDecay: o.weightDecay,
    clipNorm: o.clip,
  };
}
