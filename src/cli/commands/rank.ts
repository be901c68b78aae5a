/**
 * `spartan rank`: the rows to label next. Scores a JSONL file (labels optional) with a memory and orders the rows
 * by the uncertainty of its calibrated probabilities, most uncertain first (src/engine/analysis/uncertainty.ts).
 */
import { Command } from 'commander';
import { readUnlabelledJsonl, TaskModel, rankRows, formatTable, SpartanError } from '../../engine';
import type { RankResult } from '../../protocol/results';
import { makeOutput } from '../output';
import { defaultThreads, intOption, resolveBackboneSpec } from '../options';
import { describeProblems } from './train';

export function registerRank(program: Command): void {
  program
    .command('rank')
    .description(
      'order the rows of a JSONL file (labels optional) by how unsure the memory is: smallest margin, then highest entropy, first',
    )
    .requiredOption('--memory <file>', 'the task memory (.safetensors)')
    .requiredOption('--data <file>', 'rows to rank (JSONL; "label" optional)')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone the memory was trained for', 'embedded')
    .option('--batch-size <n>', 'examples per forward pass', intOption(1), 32)
    .option('--top <n>', 'rows shown in the human output', intOption(1), 20)
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .option('--skip-invalid', 'rank the valid rows of a file that has invalid ones')
    .option('--json', 'JSON result on stdout')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const parsed = readUnlabelledJsonl(o.data);
      const errors = parsed.problems.filter((p) => p.severity === 'error');
      if (errors.length && !o.skipInvalid)
        throw new SpartanError(
          `${o.data}: ${errors.length} row(s) with problems (use --skip-invalid to rank the others):\n${describeProblems(errors)}`,
        );
      const model = await TaskModel.load({ backbone: resolveBackboneSpec(o.backbone), memory: o.memory, threads: o.threads });
      try {
        const pair = Boolean(model.metadata.hyperparameters.pair);
        const odd = parsed.rows.find((r) => (r.textPair !== undefined) !== pair);
        if (odd)
          throw new SpartanError(
            `${o.data}:${odd.line}: ${pair ? 'this row has no "text_pair", but the memory is a text-pair task' : 'this row has a "text_pair", but the memory is a single-text task'}`,
          );
        const rows = await rankRows(model, parsed.rows, o.batchSize);
        const result: RankResult = { file: o.data, memory: o.memory, rows };
        const shown = (p: string | string[]) => (Array.isArray(p) ? `[${p.join(', ')}]` : p);
        out.result(
          result,
          `${o.data}: ${rows.length} rows, most uncertain first:\n` +
            formatTable(
              ['line', 'predicted', 'margin', 'entropy', 'label'],
              rows
                .slice(0, o.top)
                .map((r) => [String(r.line), shown(r.predicted), r.margin, r.entropy, r.label === undefined ? '' : shown(r.label)]),
            ),
        );
      } finally {
        await model.close();
      }
    });
}
