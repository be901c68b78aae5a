/**
 * `spartan audit`: suspect labels. Trains k fold memories (each on the rows outside its fold) and ranks every
 * row by the out-of-fold probability of its given label, lowest first (src/engine/analysis/audit.ts).
 * Progress as train's (each step event carries its fold); SIGINT/SIGTERM cancel, and nothing is written.
 */
import { Command, Option } from 'commander';
import {
  loadBackbone,
  inferTask,
  loadTokenizer,
  METHODS,
  MethodName,
  methodSpec,
  TRAINING_DEFAULTS,
  checkSequenceLength,
  auditLabels,
  AUDIT_DEFAULTS,
  AUDIT_SCORES,
  DEFAULT_AUDIT_SCORE,
  formatTable,
  SpartanError,
} from '../../engine';
import { addTrainingOptions, geometryOf, sharedTrainConfig, SharedTrainingOptions } from '../trainingOptions';
import { makeOutput } from '../output';
import { defaultThreads, floatOption, intOption, resolveBackboneSpec } from '../options';
import { readRows } from '../rows';
import type { AuditScore } from '../../protocol/results';

/** What commander parses `audit`'s options to. */
interface AuditOptions extends SharedTrainingOptions {
  data: string;
  folds: number;
  repeats: number;
  devShare: number;
  patience: number;
  score: AuditScore;
  backbone: string;
  method: string;
  epochs: number;
  steps?: number;
  lr: number;
  seed: number;
  top: number;
  threads: number;
  skipInvalid?: boolean;
  json?: boolean;
}

export function registerAudit(program: Command): void {
  const cmd = program
    .command('audit')
    .description('find suspect labels: k-fold memories score every row out of fold; rows whose given label is least likely come first')
    .requiredOption('--data <file>', 'labelled rows (JSONL, single-label classification)')
    .option('--folds <k>', 'folds (one memory trained per fold)', intOption(2), AUDIT_DEFAULTS.folds)
    .option(
      '--repeats <n>',
      'fold repetitions with other seeds, probabilities averaged (each costs a full audit)',
      intOption(1),
      AUDIT_DEFAULTS.repeats,
    )
    .option(
      '--dev-share <f>',
      "share of each fold's rows held out for early stopping and its temperature; 0: none",
      floatOption(0, 0.5),
      AUDIT_DEFAULTS.devShare,
    )
    .option('--patience <n>', 'epochs without inner-dev improvement before a fold stops (0: never)', intOption(0), AUDIT_DEFAULTS.patience)
    .addOption(new Option('--score <name>', 'how rows are ranked').choices(AUDIT_SCORES).default(DEFAULT_AUDIT_SCORE))
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone', 'embedded')
    .addOption(new Option('--method <name>', 'adaptation method of the fold memories').choices(METHODS).default('spartan'))
    .option('--epochs <n>', 'epochs per fold (at most, with --dev-share)', intOption(1), AUDIT_DEFAULTS.epochs)
    .option('--steps <n>', 'optimiser steps per fold instead of epochs', intOption(1))
    .option('--lr <rate>', 'peak learning rate', floatOption(0, Infinity, false), TRAINING_DEFAULTS.lr)
    .option('--seed <n>', 'seed of the folds, initialisation, shuffling and dropout', intOption(0), TRAINING_DEFAULTS.seed)
    .option('--top <n>', 'rows shown in the human output', intOption(1), 20)
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .option('--skip-invalid', 'audit the valid rows of a file that has invalid ones (they are reported)')
    .option('--json', 'JSON result on stdout, JSON-lines progress on stderr');
  addTrainingOptions(cmd).action(async (o: AuditOptions) => {
    const out = makeOutput(Boolean(o.json));
    const backbone = await loadBackbone(resolveBackboneSpec(o.backbone));
    checkSequenceLength(o.maxLength, backbone.config, '--max-length');
    const tokenizer = loadTokenizer(backbone.tokenizerDir);
    const rows = readRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l), 'audit');
    const task = inferTask(rows, o.data);
    const method = methodSpec(o.method as MethodName, { geometry: geometryOf(o) });

    const abort = new AbortController();
    const onSignal = () => abort.abort(new SpartanError('audit interrupted'));
    // `on`, not `once`: a second signal while the fold winds down must not kill the process mid-way.
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let lastPrint = 0;
    try {
      const result = await auditLabels({
        backbone,
        tokenizer,
        task,
        rows,
        file: o.data,
        folds: o.folds,
        repeats: o.repeats,
        devShare: o.devShare,
        score: o.score,
        config: {
          ...sharedTrainConfig(o),
          method,
          epochs: o.epochs,
          steps: o.steps,
          optimizer: 'adamw',
          lr: o.lr,
          seed: o.seed,
          shuffle: true,
          bucket: true,
          threads: o.threads,
          patience: o.patience,
        },
        signal: abort.signal,
        onEvent: (e) => {
          if (e.event === 'step') {
            const now = Date.now();
            const human = now - lastPrint > 2000 ? `fold ${e.fold}: step ${e.step}/${e.steps}  loss ${e.loss.toFixed(4)}` : undefined;
            if (human) lastPrint = now;
            out.event(e, human);
          } else if (e.event === 'fold') {
            out.event(e, `fold ${e.fold}/${e.folds}: training on ${e.trainRows} rows, scoring ${e.heldOutRows}`);
          } else {
            out.event(e);
          }
        },
      });
      const top = result.rows.slice(0, o.top);
      out.result(
        result,
        `${o.data}: ${result.rows.length} rows, ${result.issues} flagged by confident learning (${o.folds} folds × ${o.repeats}, ${result.seconds.toFixed(1)} s); most suspect first:\n` +
          formatTable(
            ['line', 'label', 'predicted', 'p(label)', 'p(predicted)', 'flagged'],
            top.map((r) => [String(r.line), r.label, r.predicted, r.p_label, r.p_predicted, r.issue ? 'yes' : '']),
          ),
      );
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
  });
}
