/** `spartan classify`: label (or score) of one text, or of every row of a JSONL file. */
import { Command } from 'commander';
import { readUnlabelledJsonl, TaskModel, SpartanError } from '../../engine';
import { makeOutput } from '../output';
import { defaultThreads, intOption, quantizeOption, resolveBackboneSpec } from '../options';
import { readTextInput } from '../textInput';
import { acceptRows } from '../rows';

export function registerClassify(program: Command): void {
  program
    .command('classify')
    .description('classify a text (or every row of a JSONL file) with a memory')
    .requiredOption('--memory <file>', 'the task memory (.safetensors)')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone the memory was trained for', 'embedded')
    .option('--text <text>', 'the text to classify (short texts; longer ones with --text-file)')
    .option('--text-pair <text>', 'second text, for pair tasks')
    .option('--text-file <file>', 'read the text from a file (- = stdin)')
    .option('--text-pair-file <file>', 'read the second text from a file (- = stdin)')
    .option('--stdin-json', 'read one JSON object {"text", "text_pair"?} from stdin')
    .option('--data <file>', 'JSONL rows to classify (labels not needed)')
    .option('--skip-invalid', 'classify the valid rows of a file that has invalid ones (they are reported)')
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .addOption(quantizeOption())
    .option('--json', 'JSON output')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      // Inputs are read and checked before the model is loaded: a bad input costs nothing.
      const input = await readTextInput(o);
      if ((input === undefined) === (o.data === undefined))
        throw new SpartanError('give exactly one of --text (--text-file, --stdin-json) or --data');
      const parsed = o.data !== undefined ? readUnlabelledJsonl(o.data) : undefined;
      if (parsed) acceptRows(parsed, o.data, Boolean(o.skipInvalid), (l) => out.info(l), 'classify');
      const model = await TaskModel.load({
        backbone: resolveBackboneSpec(o.backbone),
        memory: o.memory,
        threads: o.threads,
        quantize: o.quantize,
        ownsBackbone: true,
      });
      try {
        const pairTask = Boolean(model.metadata.hyperparameters.pair);
        if (parsed) {
          const pairRows = parsed.rows.some((r) => r.textPair !== undefined);
          if (pairRows !== pairTask)
            throw new SpartanError(
              `${o.data}: its rows are ${pairRows ? 'text pairs' : 'single texts'}, but ${o.memory} is a ${pairTask ? 'text-pair' : 'single-text'} task`,
            );
        }
        if (input) {
          if (pairTask && input.textPair === undefined) throw new SpartanError(`${o.memory} is a text-pair task: give --text-pair too`);
          if (!pairTask && input.textPair !== undefined)
            throw new SpartanError(`${o.memory} is a single-text task: --text-pair is not used by it`);
          const t0 = performance.now();
          const [p] = await model.predict([input]);
          const ms = performance.now() - t0;
          const human =
            p.score !== undefined
              ? `score ${p.score.toFixed(4)}`
              : `${p.labels ? `[${p.labels.join(', ')}]` : p.label}  (${Object.entries(p.probabilities!)
                  .map(([k, v]) => `${k} ${v.toFixed(3)}`)
                  .join(', ')})`;
          out.result({ ...p, task: model.metadata.task, milliseconds: ms, quantize: model.quantize }, human);
        } else {
          if (!parsed) throw new SpartanError('give --data');
          const preds = await model.predict(parsed.rows);
          const rows = parsed.rows.map((r, i) => ({ line: r.line, ...preds[i] }));
          out.result(
            { predictions: rows, problems: parsed.problems },
            rows.map((r) => `${o.data}:${r.line}\t${r.labels ? JSON.stringify(r.labels) : (r.label ?? r.score?.toFixed(4))}`).join('\n'),
          );
        }
      } finally {
        await model.close();
      }
    });
}
