/**
 * A GLUE task's train and dev rows, read once per grid from the published TSVs (`<glue-dir>/<TASK>/train.tsv`,
 * `dev.tsv`) with `importGlueTask`, and a tokenizer that remembers its encodings so each text of a task is
 * tokenised once for the whole method × seed grid rather than once per run.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  GLUE_TASKS,
  GlueRow,
  glueTaskName,
  importGlueTask,
  Example,
  inferTask,
  RowProblem,
  TaskInfo,
  EncodedText,
  RobertaTokenizer,
  SpartanError,
  createRng,
  shuffleInPlace,
} from '../../engine';

export interface GlueTaskData {
  /** Canonical GLUE name (SST-2, MRPC, STS-B, …). */
  task: string;
  info: TaskInfo;
  train: Example[];
  dev: Example[];
  trainFile: string;
  devFile: string;
  /** GLUE headline metric (picks the best epoch and fills the table's average). */
  metric: string;
  /** Index of GLUE's positive class in `info.labels` (binary F1), where the task reports F1. */
  positiveClass?: number;
  /** Rows the importer left out, with file:line and why. */
  skipped: RowProblem[];
  /** Rows in the files before any --train-rows / --dev-rows cap. */
  totalTrain: number;
  totalDev: number;
}

export interface LoadOptions {
  /** Keep this many training rows: a fixed seeded subset (seed 0), the same for every method and seed. */
  trainRows?: number;
  devRows?: number;
}

/** `<glueDir>/<task>` under its canonical name, or under the name as given (e.g. a lower-case folder). */
export function glueTaskDir(glueDir: string, task: string): string {
  const name = glueTaskName(task);
  const candidates = [name, task].filter((n): n is string => Boolean(n)).map((n) => path.join(glueDir, n));
  const found = candidates.find((d) => fs.existsSync(d));
  if (!found) throw new SpartanError(`${candidates[0]}: GLUE task folder not found (expected train.tsv and dev.tsv there)`);
  return found;
}

export function loadGlueTaskData(glueDir: string, task: string, opts: LoadOptions = {}): GlueTaskData {
  const name = glueTaskName(task);
  if (!name) throw new SpartanError(`unknown GLUE task "${task}"; known: ${Object.keys(GLUE_TASKS).join(', ')}`);
  const glue = GLUE_TASKS[name];
  const dir = glueTaskDir(glueDir, name);
  const trainFile = path.join(dir, 'train.tsv');
  // MNLI has two dev files; the grid evaluates on the first (matched), as GLUE's headline MNLI-m.
  const devFile = path.join(dir, glue.devFiles[0]);
  const trainImport = importGlueTask(name, trainFile);
  const devImport = importGlueTask(name, devFile);
  const allTrain = toExamples(trainImport.rows);
  const allDev = toExamples(devImport.rows);
  // Labels from the whole training file, so a capped or few-shot subset still has every class's output.
  const info = inferTask(allTrain, trainFile);
  const positiveClass = glue.positive !== undefined ? info.labels.indexOf(glue.positive) : undefined;
  if (positiveClass !== undefined && positiveClass < 0)
    throw new SpartanError(`${trainFile}: no "${glue.positive}" rows (GLUE's positive class for F1)`);
  const unknown = info.task === 'classification' ? allDev.filter((r) => !info.labels.includes(r.label as string)) : [];
  if (unknown.length) throw new SpartanError(`${devFile}: label ${JSON.stringify(unknown[0].label)} does not occur in ${trainFile}`);
  return {
    task: name,
    info,
    train: subset(allTrain, opts.trainRows),
    dev: subset(allDev, opts.devRows),
    trainFile,
    devFile,
    metric: glue.metric,
    positiveClass,
    skipped: [...trainImport.skipped, ...devImport.skipped],
    totalTrain: allTrain.length,
    totalDev: allDev.length,
  };
}

/**
 * `line` is the row's ordinal among the imported rows (1-based): importGlueTask does not return TSV line
 * numbers, and skipped lines are reported separately with theirs.
 */
function toExamples(rows: GlueRow[]): Example[] {
  return rows.map((r, i) => ({
    text: r.text,
    ...(r.text_pair !== undefined ? { textPair: r.text_pair } : {}),
    label: r.label,
    line: i + 1,
  }));
}

/** A fixed (seed 0) uniform subset of n rows, kept in file order; all rows when n is absent or not smaller. */
export function subset<T>(rows: T[], n?: number): T[] {
  if (n === undefined || n >= rows.length) return rows;
  const keep = shuffleInPlace(
    rows.map((_, i) => i),
    createRng(0),
  )
    .slice(0, n)
    .sort((a, b) => a - b);
  return keep.map((i) => rows[i]);
}

/** A tokenizer whose encode() is memoised by (text, pair, maxLength). */
export function cachingTokenizer(base: RobertaTokenizer): RobertaTokenizer & { cacheSize(): number } {
  const cache = new Map<string, EncodedText>();
  return {
    padId: base.padId,
    bosId: base.bosId,
    eosId: base.eosId,
    vocabSize: base.vocabSize,
    encode(text: string, textPair: string | undefined, maxLength: number): EncodedText {
      // JSON of the triple: unambiguous whatever characters the texts contain.
      const key = JSON.stringify([maxLength, text, textPair ?? null]);
      let hit = cache.get(key);
      if (!hit) {
        hit = base.encode(text, textPair, maxLength);
        cache.set(key, hit);
      }
      return hit;
    },
    cacheSize: () => cache.size,
  };
}
