/**
 * `spartan glue`: the paper's GLUE experiments.
 *
 * - `glue import --task T --dir D --out O`: a task's train.tsv / dev.tsv → O/train.jsonl, O/dev.jsonl.
 * - `glue run …`: the method × task × seed grid, in this process (see lab/experiments/grid.ts), results merged
 *   into --out after every run (a rerun skips finished runs), then the table of the paper's Tables 1 and 2.
 *   `--parallel P` starts P worker processes of this same command (`--shard i/P`, threads split between them)
 *   that share the results file and claim runs one at a time (see GridOptions.shard): onnxruntime-node runs a
 *   session synchronously on the JS thread, so concurrent runs need processes, not promises.
 * - `glue table --results F…`: the table of existing results files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import {
  GLUE_TASKS,
  glueTaskName,
  importGlueTask,
  writeJsonl,
  METHODS,
  MethodName,
  loadBackbone,
  loadTokenizer,
  writeFileAtomic,
  SpartanError,
  TRAINING_DEFAULTS,
  selfEntry,
  spawnEngine,
} from '../../engine';
import { claimsDir, DEFAULT_LR, GridEvent, GridOptions, gridKeys, learningRates, runGrid } from '../../lab/experiments/grid';
import { readResults, RunRecord } from '../../lab/experiments/results';
import { buildTable, formatMarkdown, formatTable, protocolNotes } from '../../lab/experiments/table';
import { makeOutput, Output } from '../output';
import { addTrainingOptions, geometryOf, sharedTrainConfig } from '../trainingOptions';
import { defaultThreads, floatOption, intOption, resolveBackboneSpec } from '../options';
import { describeProblems } from '../rows';

const list = (value: string): string[] =>
  value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

function taskList(value: string): string[] {
  return list(value).map((t) => {
    const name = glueTaskName(t);
    if (!name) throw new InvalidArgumentError(`unknown GLUE task "${t}"; known: ${Object.keys(GLUE_TASKS).join(', ')}`);
    return name;
  });
}

function methodList(value: string): MethodName[] {
  return list(value).map((m) => {
    if (!(METHODS as string[]).includes(m)) throw new InvalidArgumentError(`unknown method "${m}"; known: ${METHODS.join(', ')}`);
    return m as MethodName;
  });
}

function seedList(value: string): number[] {
  return list(value).map((s) => {
    const n = Number(s);
    if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`seeds are non-negative integers, got "${s}"`);
    return n;
  });
}

function shardOption(value: string): { index: number; count: number } {
  const m = /^(\d+)\/(\d+)$/.exec(value);
  const index = m ? Number(m[1]) : NaN,
    count = m ? Number(m[2]) : NaN;
  if (!m || count < 1 || index < 1 || index > count) throw new InvalidArgumentError(`expected i/n with 1 ≤ i ≤ n, got "${value}"`);
  return { index: index - 1, count };
}

export function registerGlue(program: Command): void {
  const glue = program
    .command('glue')
    .description("GLUE experiments: import TSVs, run the paper's method × task × seed grid, print its tables");

  glue
    .command('import')
    .description("convert a GLUE task's train.tsv and dev.tsv into train.jsonl and dev.jsonl")
    .requiredOption('--task <name>', `GLUE task (${Object.keys(GLUE_TASKS).join(', ')})`)
    .requiredOption('--dir <folder>', "the task's folder of the GLUE distribution (holding train.tsv, dev.tsv)")
    .requiredOption('--out <folder>', 'where to write train.jsonl and dev.jsonl')
    .option('--json', 'one JSON object on stdout')
    .action((o) => {
      const out = makeOutput(Boolean(o.json));
      const name = glueTaskName(o.task);
      if (!name) throw new SpartanError(`unknown GLUE task "${o.task}"; known: ${Object.keys(GLUE_TASKS).join(', ')}`);
      const files: {
        split: string;
        source: string;
        out: string;
        rows: number;
        skipped: { file: string; line: number; message: string }[];
      }[] = [];
      const devFiles = GLUE_TASKS[name].devFiles;
      const splits: [string, string][] = [
        ['train', 'train.tsv'],
        ...devFiles.map((f): [string, string] => [devFiles.length > 1 ? path.basename(f, '.tsv') : 'dev', f]),
      ];
      for (const [split, tsv] of splits) {
        const source = path.join(o.dir, tsv);
        const imported = importGlueTask(name, source);
        const target = path.join(o.out, `${split}.jsonl`);
        writeJsonl(target, imported.rows);
        files.push({
          split,
          source,
          out: target,
          rows: imported.rows.length,
          skipped: imported.skipped.map((p) => ({ file: p.file, line: p.line, message: p.message })),
        });
        if (imported.skipped.length)
          out.info(`${source}: skipped ${imported.skipped.length} line(s):\n${describeProblems(imported.skipped)}`);
      }
      out.result(
        { task: name, files },
        files.map((f) => `${f.out}: ${f.rows} rows from ${f.source}${f.skipped.length ? ` (${f.skipped.length} skipped)` : ''}`).join('\n'),
      );
    });

  const run = glue
    .command('run')
    .description('train and evaluate every method × task × seed on the GLUE dev sets; results merged into --out after each run')
    .requiredOption('--glue-dir <folder>', 'the GLUE distribution: <folder>/<TASK>/train.tsv and dev.tsv')
    .addOption(
      new Option('--tasks <list>', 'comma-separated GLUE tasks')
        .argParser(taskList)
        .default(['SST-2', 'MRPC', 'STS-B'], 'SST-2,MRPC,STS-B'),
    )
    .addOption(new Option('--methods <list>', 'comma-separated methods').argParser(methodList).default([...METHODS], METHODS.join(',')))
    .addOption(new Option('--seeds <list>', 'comma-separated seeds').argParser(seedList).default([1, 2, 3], '1,2,3'))
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone', 'embedded')
    .option('--train-rows <n>', 'train on a fixed subset of n rows per task (the same for every method and seed)', intOption(1))
    .option('--dev-rows <n>', 'evaluate on a fixed subset of n dev rows per task', intOption(1))
    .option('--epochs <n>', 'epochs (full-data protocol)', intOption(1), TRAINING_DEFAULTS.epochs)
    .option('--few-shot <n>', 'few-shot protocol: n training rows sampled with each seed', intOption(1))
    .option('--few-shot-steps <n>', 'few-shot protocol: exact optimiser steps', intOption(1), 1000)
    .option('--stratified', 'few-shot rows sampled per class in proportion to the class sizes (classification)');
  for (const m of METHODS) run.option(`--lr-${m} <rate>`, `peak learning rate of ${m}`, floatOption(0, Infinity, false), DEFAULT_LR[m]);
  addTrainingOptions(run)
    .option('--out <file>', 'results JSON, rewritten after every run; runs already in it are skipped', 'glue-results.json')
    .option('--markdown <file>', 'also write the table as Markdown')
    .option('--save-dir <folder>', 'save every trained delta as <task>-<method>-seed<seed>.safetensors')
    .option('--save-methods <list>', 'with --save-dir: save only these methods (default: all)', methodList)
    .option('--threads <n>', 'intra-op threads (split between --parallel processes)', intOption(1), defaultThreads())
    .option('--parallel <p>', 'run p worker processes at once, sharing --out and the threads', intOption(1), 1)
    .addOption(
      new Option('--shard <i/n>', 'be worker i of n, claiming runs in <out>.claims/ (what --parallel starts)')
        .argParser(shardOption)
        .hideHelp(),
    )
    .option('--json', 'JSON result on stdout, JSON-lines progress on stderr')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const lrs = learningRates(Object.fromEntries(METHODS.map((m) => [m, o[`lr${m[0].toUpperCase()}${m.slice(1)}`]])));
      const backbone = await loadBackbone(resolveBackboneSpec(o.backbone));
      const grid: GridOptions = {
        glueDir: o.glueDir,
        tasks: o.tasks,
        methods: o.methods,
        seeds: o.seeds,
        backbone,
        tokenizer: loadTokenizer(backbone.tokenizerDir),
        lrs,
        epochs: o.epochs,
        trainRows: o.trainRows,
        devRows: o.devRows,
        fewShot: o.fewShot,
        fewShotSteps: o.fewShot ? o.fewShotSteps : undefined,
        stratified: Boolean(o.stratified),
        ...sharedTrainConfig(o),
        geometry: geometryOf(o),
        threads: o.threads,
        out: o.out,
        saveDir: o.saveDir,
        saveMethods: o.saveMethods,
        shard: o.shard,
        onEvent: progress(out, o.shard),
      };
      if (o.parallel > 1 && !o.shard) {
        // Claims of an earlier, interrupted parallel grid would hide its unfinished runs: start afresh.
        fs.rmSync(claimsDir(o.out), { recursive: true, force: true });
        try {
          await runShards(o.parallel, o.threads, out, o.out);
        } finally {
          fs.rmSync(claimsDir(o.out), { recursive: true, force: true });
        }
      } else {
        const abort = new AbortController();
        const onSignal = () => abort.abort(new SpartanError(`interrupted; finished runs are in ${o.out} and a rerun skips them`));
        process.once('SIGINT', onSignal);
        process.once('SIGTERM', onSignal);
        try {
          await runGrid({ ...grid, signal: abort.signal });
        } finally {
          process.off('SIGINT', onSignal);
          process.off('SIGTERM', onSignal);
        }
        if (o.shard) return; // the parent prints the table
      }
      // The table of this grid: exactly the runs of these tasks, methods, seeds and protocol found in --out.
      const keys = new Set(gridKeys(grid));
      const runs = readResults(o.out).runs.filter((r) => keys.has(r.key));
      report(out, runs, o.tasks, o.methods, o.markdown, { out: o.out, lrs, missing: keys.size - runs.length });
    });

  glue
    .command('table')
    .description('print the table of one or more results files')
    .requiredOption('--results <files...>', 'results JSON files of `glue run`')
    .option('--markdown <file>', 'also write the table as Markdown')
    .option('--json', 'one JSON object on stdout')
    .action((o) => {
      const out = makeOutput(Boolean(o.json));
      // The same run in several files (a copy, a merged shard) counts once: the last file's record wins.
      const runs = [...new Map((o.results as string[]).flatMap((f) => readResults(f).runs).map((r) => [r.key, r])).values()];
      report(out, runs, undefined, undefined, o.markdown, { results: o.results });
    });
}

function report(
  out: Output,
  runs: RunRecord[],
  tasks: string[] | undefined,
  methods: string[] | undefined,
  markdown: string | undefined,
  extra: Record<string, unknown>,
): void {
  const table = buildTable(runs, { tasks, methods });
  const notes = protocolNotes(runs, methods);
  if (markdown) writeFileAtomic(markdown, formatMarkdown(table, notes));
  const missing =
    typeof extra.missing === 'number' && extra.missing > 0 ? `\n${extra.missing} run(s) of this grid are not in the results yet` : '';
  out.result({ ...extra, notes, table, runs }, formatTable(table, notes) + missing + (markdown ? `\n(Markdown: ${markdown})` : ''));
}

/** Human progress lines, or JSON lines (training steps at most every 2 s per run, so a long grid's log stays small). */
function progress(out: Output, shard?: { index: number; count: number }): (e: GridEvent) => void {
  const tag = shard ? `[worker ${shard.index + 1}/${shard.count}] ` : '';
  let lastStep = 0;
  return (e) => {
    switch (e.event) {
      case 'start':
        out.event(
          { ...e, shard: shard ? shard.index + 1 : undefined },
          `${tag}grid of ${e.runs} runs (${e.tasks.join(', ')} × ${e.methods.join(', ')} × seeds ${e.seeds.join(', ')}); ${e.done} already in the results, ${e.toRun} to run; learning rates ${Object.entries(
            e.lrs,
          )
            .filter(([m]) => e.methods.includes(m))
            .map(([m, v]) => `${m} ${v}`)
            .join(', ')}`,
        );
        break;
      case 'data':
        out.event(
          e,
          `${tag}${e.task}: ${e.trainRows} training rows (of ${e.totalTrain}), ${e.devRows} dev rows (of ${e.totalDev})${
            e.skippedCount
              ? `; ${e.skippedCount} TSV line(s) skipped:\n${e.skipped
                  .slice(0, 10)
                  .map((p) => `  ${p.file}:${p.line}: ${p.message}`)
                  .join('\n')}`
              : ''
          }`,
        );
        break;
      case 'run':
        lastStep = 0;
        out.event({ ...e }, `${tag}[${e.index}/${e.total}] ${e.task} ${e.method} seed ${e.seed} (lr ${e.lr})`);
        break;
      case 'skip':
        out.event({ ...e });
        break;
      case 'train': {
        const t = e.train;
        if (t.event === 'step') {
          const now = Date.now();
          if (now - lastStep < 2000 && t.step !== t.steps) return;
          lastStep = now;
          out.event(
            {
              event: 'step',
              index: e.index,
              task: e.task,
              method: e.method,
              seed: e.seed,
              step: t.step,
              steps: t.steps,
              epoch: t.epoch,
              loss: t.loss,
            },
            `${tag}  step ${t.step}/${t.steps}  epoch ${t.epoch}  loss ${t.loss.toFixed(4)}`,
          );
        } else if (t.event === 'eval') {
          out.event(
            {
              event: 'eval',
              index: e.index,
              task: e.task,
              method: e.method,
              seed: e.seed,
              epoch: t.epoch,
              metrics: t.metrics,
              best: t.best,
            },
            `${tag}  epoch ${t.epoch}: ${Object.entries(t.metrics)
              .map(([k, v]) => `${k} ${v.toFixed(4)}`)
              .join('  ')}${t.best ? '  (best)' : ''}`,
          );
        }
        break;
      }
      case 'result': {
        const r = e.record;
        out.event(
          { event: 'result', index: e.index, record: r },
          `${tag}[${e.index}/${e.total}] ${r.task} ${r.method} seed ${r.seed}: ${r.metric} ${r.score.toFixed(4)} (epoch ${r.bestEpoch}), ${r.wallSeconds.toFixed(1)} s, ${r.examplesPerSecond.toFixed(1)} ex/s, ${r.trainableParameters} params, ${r.storageBytes} bytes`,
        );
        break;
      }
      case 'done':
        out.event(e, `${tag}${e.ran} run(s) in ${e.seconds.toFixed(1)} s; ${e.skipped} skipped (already in the results)`);
        break;
    }
  };
}

/**
 * Starts `p` copies of this command, each with `--shard i/p` and threads/p intra-op threads, and waits for all.
 * They share the results file (merged under a lock) and take runs as they become free; a failed worker fails the
 * command after the others finish. A shard is this very command line again with `--shard` and `--threads`
 * appended (the last of a repeated option wins; a shard neither starts shards nor prints the table). SIGINT or
 * SIGTERM stop the shards as they stop a single-process grid: at the next step, finished runs kept.
 */
async function runShards(p: number, threads: number, out: Output, resultsFile: string): Promise<void> {
  const each = Math.max(1, Math.floor(threads / p));
  out.info(`starting ${p} worker processes with ${each} thread(s) each`);
  const abort = new AbortController();
  const onSignal = () => abort.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const shards = Array.from({ length: p }, (_, i) =>
      spawnEngine(selfEntry(), [...process.argv.slice(2), '--shard', `${i + 1}/${p}`, '--threads', String(each)], {
        stdout: 'ignore',
        stderr: 'inherit', // their progress lines (JSON with --json) are this command's
        signal: abort.signal,
      }),
    );
    const exits = await Promise.all(shards.map((s) => s.exit));
    if (abort.signal.aborted) throw new SpartanError(`interrupted; finished runs are in ${resultsFile} and a rerun skips them`);
    const failed = exits.map((e, i) => (e.code === 0 ? -1 : i + 1)).filter((i) => i > 0);
    if (failed.length)
      throw new SpartanError(
        `worker(s) ${failed.join(', ')} of ${p} failed (see above); rerun the same command to finish the missing runs`,
      );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
