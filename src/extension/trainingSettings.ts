/**
 * The `spartan.training.*` settings and their defaults, taken from the engine (engine/training/defaults.ts and
 * the paper's geometry): package.json's `contributes.configuration` repeats them for the Settings UI, and
 * test/defaults.test.ts checks that it does. No `vscode` import, so the unit tests read it.
 */
import { DEFAULT_GEOMETRY, TRAINING_DEFAULTS as ENGINE } from '../engine/light';

/** Setting name (after `spartan.training.`) → default. */
export const TRAINING_DEFAULTS = {
  parents: DEFAULT_GEOMETRY.parents,
  children: DEFAULT_GEOMETRY.children,
  topK: DEFAULT_GEOMETRY.topK,
  temperature: DEFAULT_GEOMETRY.temperature,
  learningRate: ENGINE.lr,
  batchSize: ENGINE.batchSize,
  maxLength: ENGINE.maxLength,
  epochs: ENGINE.epochs,
  dropout: ENGINE.dropout,
  seed: ENGINE.seed,
  devShare: ENGINE.devShare,
} as const;

export type TrainingSettings = { -readonly [K in keyof typeof TRAINING_DEFAULTS]: number };
