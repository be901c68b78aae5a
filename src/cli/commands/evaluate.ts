/** `spartan eval`: metrics of a memory on a labelled JSONL file. */
import { Command } from 'commander';
import { checkDevLabels, TaskModel, evaluationReport, SpartanError } from '../../engine';
import { formatEvalReport } from '../reportTables';
import { makeOutput } from '../output';
import { defaultThreads, intOption, quantizeOption, resolveBackboneSpec } from '../options';
import { describeProblems, readRows } from './train';

export function registerEval(program: Command): void {
  program
    .command('eval')
    .description(
      'evaluate a memory on a labelled JSONL file: accuracy, F1, MCC, per-label scores, confusion and calibration (ECE); micro/macro F1 for multi-label; Pearson/Spearman for regression',
    )
    .requiredOption('--memory <file>', 'the task memory (.safetensors)')
    .requiredOption('--data <file>', 'labelled rows (JSONL)')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone the memory was trained for', 'embedded')
    .option('--batch-size <n>', 'examples per forward pass', intOption(1), 32)
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .addOption(quantizeOption())
    .option('--skip-invalid', 'evaluate the valid rows of a file that has invalid ones')
    .option('--json', 'one JSON object of metrics on stdout')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const model = await TaskModel.load({
        backbone: resolveBackboneSpec(o.backbone),
        memory: o.memory,
        threads: o.threads,
        quantize: o.quantize,
        dropInt8SourceWeights: true,
      });
      try {
        const rows = readRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l));
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
