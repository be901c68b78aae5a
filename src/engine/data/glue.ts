/**
 * Converts the published GLUE TSV files into Spartan's JSONL rows `{text, text_pair?, label}`.
 *
 * GLUE TSVs are not CSV: sentences contain unbalanced `"` characters that a CSV reader would treat as quoting
 * and swallow several lines into one field (as pandas does without QUOTE_NONE). Lines are split on tabs only.
 */
import * as fs from 'fs';
import * as path from 'path';
import { readRegularFileSync } from '../io/regularFile';
import { MAX_JSONL_BYTES } from '../limits';
import { SpartanError, TaskType } from '../types';
import type { RowProblem } from './jsonl';

export type GlueMetric = 'accuracy' | 'f1' | 'mcc' | 'pearson' | 'spearman';

export interface GlueTaskInfo {
  /** The headline metric of the GLUE leaderboard for this task. */
  metric: GlueMetric;
  /** Every metric GLUE reports for it (MRPC and QQP: F1 and accuracy; STS-B: Pearson and Spearman). */
  metrics: GlueMetric[];
  task: TaskType;
  /**
   * Class names in GLUE's integer order (names[i] is GLUE label i); empty for regression. This is NOT always
   * the order `inferTask` produces (it sorts names: "equivalent" < "not_equivalent"), so F1's positive class
   * must be looked up by name: `positive`.
   */
  labels: string[];
  /** The class F1 is computed for (GLUE's label 1), where F1 is reported. */
  positive?: string;
  pair: boolean;
  /** Labelled evaluation files of the published distribution. */
  devFiles: string[];
}

export const GLUE_TASKS: Record<string, GlueTaskInfo> = {
  CoLA: {
    metric: 'mcc',
    metrics: ['mcc'],
    task: 'classification',
    labels: ['unacceptable', 'acceptable'],
    pair: false,
    devFiles: ['dev.tsv'],
  },
  'SST-2': {
    metric: 'accuracy',
    metrics: ['accuracy'],
    task: 'classification',
    labels: ['negative', 'positive'],
    pair: false,
    devFiles: ['dev.tsv'],
  },
  MRPC: {
    metric: 'f1',
    metrics: ['f1', 'accuracy'],
    task: 'classification',
    labels: ['not_equivalent', 'equivalent'],
    positive: 'equivalent',
    pair: true,
    devFiles: ['dev.tsv'],
  },
  'STS-B': { metric: 'pearson', metrics: ['pearson', 'spearman'], task: 'regression', labels: [], pair: true, devFiles: ['dev.tsv'] },
  QQP: {
    metric: 'f1',
    metrics: ['f1', 'accuracy'],
    task: 'classification',
    labels: ['not_duplicate', 'duplicate'],
    positive: 'duplicate',
    pair: true,
    devFiles: ['dev.tsv'],
  },
  MNLI: {
    metric: 'accuracy',
    metrics: ['accuracy'],
    task: 'classification',
    labels: ['entailment', 'neutral', 'contradiction'],
    pair: true,
    devFiles: ['dev_matched.tsv', 'dev_mismatched.tsv'],
  },
  QNLI: {
    metric: 'accuracy',
    metrics: ['accuracy'],
    task: 'classification',
    labels: ['entailment', 'not_entailment'],
    pair: true,
    devFiles: ['dev.tsv'],
  },
  RTE: {
    metric: 'accuracy',
    metrics: ['accuracy'],
    task: 'classification',
    labels: ['entailment', 'not_entailment'],
    pair: true,
    devFiles: ['dev.tsv'],
  },
  WNLI: {
    metric: 'accuracy',
    metrics: ['accuracy'],
    task: 'classification',
    labels: ['not_entailment', 'entailment'],
    pair: true,
    devFiles: ['dev.tsv'],
  },
};

/** A JSONL row as `parseJsonlText` reads it back. */
export interface GlueRow {
  text: string;
  text_pair?: string;
  label: string | number;
}

export interface GlueImport {
  rows: GlueRow[];
  /** Lines left out, each with why; `skipped.length` is the count. */
  skipped: RowProblem[];
}

/** How to read one task's TSV: which columns hold the texts and the label, and how labels map to names. */
interface Layout {
  /** Header names of text, text pair and label; for a headerless file, column indices. */
  text: string | number;
  pair?: string | number;
  label: string | number;
  /** Column count of a headerless file (CoLA). */
  columns?: number;
  /** Raw label value → stored label; absent for regression. */
  labelMap?: Record<string, string>;
}

const binary = (zero: string, one: string): Record<string, string> => ({ '0': zero, '1': one });
const identity = (...names: string[]): Record<string, string> => Object.fromEntries(names.map((n) => [n, n]));

const LAYOUTS: Record<string, Layout> = {
  // CoLA has no header: source code, label, original author's mark, sentence.
  CoLA: { text: 3, label: 1, columns: 4, labelMap: binary('unacceptable', 'acceptable') },
  'SST-2': { text: 'sentence', label: 'label', labelMap: binary('negative', 'positive') },
  MRPC: { text: '#1 String', pair: '#2 String', label: 'Quality', labelMap: binary('not_equivalent', 'equivalent') },
  'STS-B': { text: 'sentence1', pair: 'sentence2', label: 'score' },
  QQP: { text: 'question1', pair: 'question2', label: 'is_duplicate', labelMap: binary('not_duplicate', 'duplicate') },
  MNLI: { text: 'sentence1', pair: 'sentence2', label: 'gold_label', labelMap: identity('entailment', 'neutral', 'contradiction') },
  QNLI: { text: 'question', pair: 'sentence', label: 'label', labelMap: identity('entailment', 'not_entailment') },
  RTE: { text: 'sentence1', pair: 'sentence2', label: 'label', labelMap: identity('entailment', 'not_entailment') },
  // WNLI's TSV has 0/1, with 1 meaning entailment (GLUE's label names for it).
  WNLI: { text: 'sentence1', pair: 'sentence2', label: 'label', labelMap: binary('not_entailment', 'entailment') },
};

/** "sst2", "SST-2", "sts_b" … → the canonical GLUE_TASKS key, or undefined. */
export function glueTaskName(task: string): string | undefined {
  const squash = (s: string): string => s.toLowerCase().replace(/[^a-z0-9]/g, '');
  return Object.keys(GLUE_TASKS).find((name) => squash(name) === squash(task));
}

/**
 * Reads one labelled GLUE TSV (train or dev). Lines with the wrong number of columns, an unknown label or an
 * empty text are skipped and reported; a missing file, unknown task or missing header column throws.
 */
export function importGlueTask(task: string, tsvPath: string): GlueImport {
  const name = glueTaskName(task);
  if (!name) throw new SpartanError(`unknown GLUE task "${task}"; known: ${Object.keys(GLUE_TASKS).join(', ')}`);
  const layout = LAYOUTS[name];

  // A bounded regular file (a FIFO or directory is refused by name; issue 9).
  const content = readRegularFileSync(tsvPath, MAX_JSONL_BYTES).toString('utf8');
  // MRPC's files start with a byte order mark that would otherwise stick to the "Quality" header.
  const lines = content
    .replace(/^\uFEFF/, '')
    .split('\n')
    .map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));

  let first = 0;
  let columns: number;
  let textCol: number;
  let pairCol: number | undefined;
  let labelCol: number;
  if (layout.columns !== undefined) {
    columns = layout.columns;
    textCol = layout.text as number;
    pairCol = layout.pair as number | undefined;
    labelCol = layout.label as number;
  } else {
    const header = (lines[0] ?? '').split('\t').map((h) => h.trim());
    const find = (column: string): number => {
      const index = header.indexOf(column);
      if (index < 0)
        throw new SpartanError(
          `${tsvPath}:1: the ${name} header has no "${column}" column (found: ${header.join(', ')}); is this a labelled ${name} train/dev file?`,
        );
      return index;
    };
    columns = header.length;
    textCol = find(layout.text as string);
    pairCol = layout.pair !== undefined ? find(layout.pair as string) : undefined;
    labelCol = find(layout.label as string);
    first = 1;
  }

  const rows: GlueRow[] = [];
  const skipped: RowProblem[] = [];
  const skip = (line: number, message: string): void => {
    skipped.push({ file: tsvPath, line, message, severity: 'warning' });
  };
  for (let i = first; i < lines.length; i++) {
    const line = i + 1;
    if (lines[i] === '') continue;
    const fields = lines[i].split('\t');
    if (fields.length !== columns) {
      skip(line, `expected ${columns} tab-separated columns, found ${fields.length}`);
      continue;
    }
    // Texts are kept verbatim (SST-2's trailing spaces included) so tokenization matches the published data.
    const text = fields[textCol];
    const pair = pairCol !== undefined ? fields[pairCol] : undefined;
    if (text.trim() === '' || (pair !== undefined && pair.trim() === '')) {
      skip(line, 'empty sentence');
      continue;
    }
    const raw = fields[labelCol].trim();
    let label: string | number;
    if (layout.labelMap) {
      const mapped = layout.labelMap[raw];
      if (mapped === undefined) {
        skip(
          line,
          `label ${JSON.stringify(raw)} is not one of ${Object.keys(layout.labelMap)
            .map((k) => JSON.stringify(k))
            .join(', ')}`,
        );
        continue;
      }
      label = mapped;
    } else {
      label = Number(raw);
      if (raw === '' || !Number.isFinite(label)) {
        skip(line, `score ${JSON.stringify(raw)} is not a number`);
        continue;
      }
    }
    rows.push(pair !== undefined ? { text, text_pair: pair, label } : { text, label });
  }
  if (rows.length === 0) {
    throw new SpartanError(
      `${tsvPath}: no ${name} rows could be read${skipped.length ? ` (${skipped.length} skipped; first: line ${skipped[0].line}: ${skipped[0].message})` : ''}`,
    );
  }
  return { rows, skipped };
}

/** Writes rows as JSONL via a temporary file and a rename, so an interrupted import leaves no half file. */
export function writeJsonl(file: string, rows: object[]): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  let text = '';
  for (const row of rows) text += JSON.stringify(row) + '\n';
  try {
    fs.writeFileSync(temporary, text, 'utf8');
    fs.renameSync(temporary, file);
  } catch (e) {
    fs.rmSync(temporary, { force: true });
    throw new SpartanError(`${file}: cannot write: ${(e as Error).message}`);
  }
}
