/**
 * `spartan rank`: the rows to label next. Scores a JSONL file (labels optional) with a memory and orders the rows
 * by the uncertainty of its calibrated probabilities, most uncertain first (src/engine/analysis/uncertainty.ts).
 */
import { Command } from 'commander';
import { TaskModel, rankRows, formatTable, SpartanError } from '../../engine';
import type { RankResult } from '../../protocol/results';
import { makeOutput } from '../output';
import { addMemoryRunOptions, intOption, resolveBackboneSpec } from '../options';
import { readUnlabelledRows } from '../rows';

export function registerRank(program: Command): void {
  const cmd = program
    .command('rank')
    .description(
      'order the rows of a JSONL file (labels optional) by how unsure the memory is: smallest margin, then highest entropy, first',
    );
  addMemoryRunOptions(cmd, { data: 'rows to rank (JSONL; "label" optional)', use: 'rank' })
    .option('--top <n>', 'rows shown in the human output', intOption(1), 20)
    .option('--json', 'JSON result on stdout')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const parsedRows = readUnlabelledRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l), 'rank');
      const model = await TaskModel.load({ backbone: resolveBackboneSpec(o.backbone), memory: o.memory, threads: o.threads });
      try {
        const pair = Boolean(model.metadata.hyperparameters.pair);
        const odd = parsedRows.find((r) => (r.textPair !== undefined) !== pair);
        if (odd)
          throw new SpartanError(
            `${o.data}:${odd.line}: ${pair ? 'this row has no "text_pair", but the memory is a text-pair task' : 'this row has a "text_pair", but the memory is a single-text task'}`,
          );
        const rows = await rankRows(model, parsedRows, o.batchSize);
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
