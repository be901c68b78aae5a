/** `spartan classify`: label (or score) of one text, or of every row of a JSONL file. */
import { Command } from 'commander';
import { readJsonl } from '../../engine/data/jsonl';
import { TaskModel } from '../../engine/pipeline/taskModel';
import { SpartanError } from '../../engine/types';
import { makeOutput } from '../output';
import { defaultThreads, intOption, resolveBackboneSpec } from '../options';

export function registerClassify(program: Command): void {
  program
    .command('classify')
    .description('classify a text (or every row of a JSONL file) with a memory')
    .requiredOption('--memory <file>', 'the task memory (.safetensors)')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone the memory was trained for', 'embedded')
    .option('--text <text>', 'the text to classify')
    .option('--text-pair <text>', 'second text, for pair tasks')
    .option('--data <file>', 'JSONL rows to classify (labels not needed)')
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .option('--json', 'JSON output')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      if ((o.text === undefined) === (o.data === undefined)) throw new SpartanError('give exactly one of --text or --data');
      const model = await TaskModel.load({ backbone: resolveBackboneSpec(o.backbone), memory: o.memory, threads: o.threads });
      try {
        const pairTask = Boolean((model.metadata.hyperparameters as Record<string, unknown>).pair);
        if (o.text !== undefined) {
          if (pairTask && o.textPair === undefined) throw new SpartanError(`${o.memory} is a text-pair task: give --text-pair too`);
          const t0 = performance.now();
          const [p] = await model.predict([{ text: o.text, textPair: o.textPair }]);
          const ms = performance.now() - t0;
          const human = p.score !== undefined
            ? `score ${p.score.toFixed(4)}`
            : `${p.labels ? `[${p.labels.join(', ')}]` : p.label}  (${Object.entries(p.probabilities!).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(', ')})`;
          out.result({ ...p, task: model.metadata.task, milliseconds: ms }, human);
        } else {
          const parsed = readJsonl(o.data);
          const preds = await model.predict(parsed.rows);
          const rows = parsed.rows.map((r, i) => ({ line: r.line, ...preds[i] }));
          out.result({ predictions: rows, problems: parsed.problems }, rows.map((r) => `${o.data}:${r.line}\t${r.labels ? JSON.stringify(r.labels) : r.label ?? r.score?.toFixed(4)}`).join('\n'));
        }
      } finally {
        await model.close();
      }
    });
}
