/**
 * Training defaults, in one place: the CLI's option defaults (`spartan train`, `spartan glue run`), the
 * extension's `spartan.training.*` settings and the defaults package.json shows in the Settings UI are all
 * these (test/defaults.test.ts checks the last two). The memory geometry's defaults are the paper's
 * (`DEFAULT_GEOMETRY` in methods/spartan.ts).
 */
export const TRAINING_DEFAULTS = {
  epochs: 3,
  batchSize: 16,
  /** Tokens per example; longer texts are cut. */
  maxLength: 128,
  /** Peak learning rate of `spartan train` (the SPARTAN authors'); the GLUE grid has one per method. */
  lr: 1e-3,
  weightDecay: 0,
  /** Share of the steps with linear warm-up (AdamW). */
  warmupRatio: 0.06,
  /** Gradient-norm clipping (AdamW); 0 disables. */
  clipNorm: 1,
  dropout: 0.1,
  seed: 42,
  /** Early stopping: evaluations without dev improvement. */
  patience: 3,
  /**
   * Share of the rows held out as the dev set when there is no dev file: the extension's default. The CLI holds
   * out nothing unless `--dev-share` is given.
   */
  devShare: 0.1,
} as const;
