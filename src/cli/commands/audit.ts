/**
 * `spartan audit`: suspect labels. Trains k fold memories (each on the rows outside its fold) and ranks every
 * row by the out-of-fold probability of its given label, lowest first (src/engine/analysis/audit.ts).
 * Progress as train's (each step event carries its fold); SIGINT/SIGTERM cancel, and nothing is written.
 */
import { Command, Option } from 'commander';
import { loadBackbone } from '../../engine/models/backbone';
import { inferTask } from '../../engine/data/jsonl';
import { loadTokenizer } from '../../engine/tokenizers/robertaTokenizer';
import { METHODS, MethodName, defaultTrainLayerNorms } from '../../engine/methods';
import { DEFAULT_GEOMETRY } from '../../engine/methods/spartan';
import { auditLabels } from '../../engine/analysis/audit';
import { formatTable } from '../../engine/training/errorAnalysis';
import { SpartanError } from '../../engine/types';
import { makeOutput } from '../output';
import { defaultThreads, floatOption, intOption, resolveBackboneSpec } from '../options';
import { readRows } from './train';

export function registerAudit(program: Command): void {
  program
    .command('audit')
    .description('find suspect labels: k-fold memories score every row out of fold; rows whose given label is least likely come first')
    .requiredOption('--data <file>', 'labelled rows (JSONL, single-label classification)')
    .option('--folds <k>', 'folds (one memory trained per fold)', intOption(2), 4)
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone', 'embedded')
    .addOption(new Option('--method <name>', 'adaptation method of the fold memories').choices(METHODS).default('spartan'))
    .option('--epochs <n>', 'epochs per fold', intOption(1), 3)
    .option('--steps <n>', 'optimiser steps per fold instead of epochs', intOption(1))
    .option('--lr <rate>', 'peak learning rate', floatOption(0, Infinity, false), 1e-3)
    .option('--batch-size <n>', 'examples per step', intOption(1), 16)
    .option('--max-length <n>', 'tokens per example, longer texts are truncated', intOption(4), 128)
    .option('--dropout <p>', 'dropout while training', floatOption(0, 0.9), 0.1)
    .option('--seed <n>', 'seed of the folds, initialisation, shuffling and dropout', intOption(0), 42)
    .option('--top <n>', 'rows shown in the human output', intOption(1), 20)
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .option('--skip-invalid', 'audit the valid rows of a file that has invalid ones (they are reported)')
    .option('--json', 'JSON result on stdout, JSON-lines progress on stderr')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const backbone = await loadBackbone(resolveBackboneSpec(o.backbone));
      const tokenizer = loadTokenizer(backbone.tokenizerDir);
      const rows = readRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l));
      const task = inferTask(rows, o.data);
      const method = { name: o.method as MethodName, geometry: { ...DEFAULT_GEOMETRY }, trainLayerNorms: defaultTrainLayerNorms(o.method as MethodName) };

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
          config: {
            method,
            epochs: o.epochs,
            steps: o.steps,
            batchSize: o.batchSize,
            maxLength: o.maxLength,
            optimizer: 'adamw',
            lr: o.lr,
            weightDecay: 0,
            warmupRatio: 0.06,
            clipNorm: 1,
            dropout: o.dropout,
            seed: o.seed,
            shuffle: true,
            bucket: true,
            threads: o.threads,
            patience: 0,
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
          `${o.data}: ${result.rows.length} rows, ${result.issues} flagged by confident learning (${o.folds} folds, ${result.seconds.toFixed(1)} s); most suspect first:\n` +
            formatTable(['line', 'label', 'predicted', 'p(label)', 'p(predicted)', 'flagged'], top.map((r) => [String(r.line), r.label, r.predicted, r.p_label, r.p_predicted, r.issue ? 'yes' : ''])),
        );
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
      }
    });
}
