/** `spartan eval`: metrics of a memory on a labelled JSONL file. */
import { Command } from 'commander';
import { checkDevLabels, TaskModel, evaluationReport, SpartanError } from '../../engine';
import { formatEvalReport } from '../reportTables';
import { makeOutput } from '../output';
import { addMemoryRunOptions, quantizeOption, resolveBackboneSpec } from '../options';
import { describeProblems, readRows } from '../rows';

export function registerEval(program: Command): void {
  const cmd = program
    .command('eval')
    .description(
      'evaluate a memory on a labelled JSONL file: accuracy, F1, MCC, per-label scores, confusion and calibration (ECE); micro/macro F1 for multi-label; Pearson/Spearman for regression',
    );
  addMemoryRunOptions(cmd, { data: 'labelled rows (JSONL)', use: 'evaluate' })
    .addOption(quantizeOption())
    .option('--json', 'one JSON object of metrics on stdout')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const model = await TaskModel.load({
        backbone: resolveBackboneSpec(o.backbone),
        memory: o.memory,
        threads: o.threads,
        quantize: o.quantize,
        ownsBackbone: true,
      });
      try {
        const rows = readRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l), 'evaluate');
        if (model.metadata.task !== 'regression') {
          const unknown = checkDevLabels(rows, model.metadata.labels, o.data, model.metadata.task === 'multilabel');
          if (unknown.length) throw new SpartanError(`${o.data}: labels the memory does not know:\n${describeProblems(unknown)}`);
        }
        const report = await evaluationReport(model, rows, o.data, o.batchSize);
        if (report.truncated) out.info(`${report.truncated} row(s) truncated to ${model.maxLength} tokens`);
        out.result(report, formatEvalReport(o.data, report));
      } finally {
        await model.close();
      }
    });
}
