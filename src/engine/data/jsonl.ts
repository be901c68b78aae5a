/**
 * JSONL datasets: one `{"text": ..., "text_pair"?: ..., "label": ...}` object per line.
 *
 * Parsing never throws on a bad row: every problem is reported with its file, 1-based line (and column where we
 * can tell) so the VS Code extension can show it in the Problems panel at the exact place, and the CLI can list
 * them all at once instead of failing on the first.
 */
import { SpartanError, TaskType } from '../types';
import { MAX_JSONL_BYTES, textSizeProblem } from '../limits';
import { readRegularFileSync } from '../io/regularFile';

/** A class name, a finite number (regression) or a list of class names (multi-label, possibly empty). */
export type Label = string | number | string[];

export interface Example {
  text: string;
  textPair?: string;
  label: Label;
  /** 1-based line in the source file. */
  line: number;
}

export interface RowProblem {
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based, where the problem can be pinned to a place in the line. */
  column?: number;
  message: string;
  /** `info`: not a problem for every command (a row without a label, which `rank` takes and training refuses). */
  severity: 'error' | 'warning' | 'info';
}

export interface ParsedJsonl {
  rows: Example[];
  problems: RowProblem[];
}

/** A row that may lack a label (`spartan rank`, `classify --data`). */
export type TextRow = Omit<Example, 'label'> & { label?: Label };

export interface TaskInfo {
  task: TaskType;
  /** Class names in output order (natural sort); empty for regression. */
  labels: string[];
  /** Rows per class name (multi-label: rows that carry it); empty for regression. */
  labelCounts: Record<string, number>;
  /** Whether the examples are text pairs. */
  pair: boolean;
}

/**
 * Parses JSONL text. Pure (no file access) so the extension can run it on an unsaved editor buffer.
 * Rows with a problem are left out of `rows`.
 */
export function parseJsonlText(text: string, file: string): ParsedJsonl {
  return parseRows(text, file, true) as ParsedJsonl;
}

/**
 * What the editor's Problems panel shows for a JSONL buffer. A file of rows without labels is valid input for
 * `spartan rank` (*Suggest Rows to Label*), so missing labels are no error there: a file where no row has a label
 * gets no problem for it, and in a file that mixes labelled and unlabelled rows each unlabelled row gets an
 * `info` hint (training and audit refuse it; rank takes it). Every other problem is what training reports.
 */
export function jsonlEditorProblems(text: string, file: string): RowProblem[] {
  const { rows, problems } = parseUnlabelledJsonlText(text, file);
  const unlabelled = rows.filter((r) => r.label === undefined);
  if (unlabelled.length === 0 || unlabelled.length === rows.length) return problems;
  const hints: RowProblem[] = unlabelled.map((r) => ({
    file,
    line: r.line,
    column: 1,
    message: `no "label": Suggest Rows to Label (spartan rank) takes this row, but training and audit refuse it while ${rows.length - unlabelled.length} other rows have labels`,
    severity: 'info',
  }));
  return [...problems, ...hints].sort((a, b) => a.line - b.line);
}

/** As `parseJsonlText`, but a row without `"label"` is kept (its label undefined) instead of reported. */
export function parseUnlabelledJsonlText(text: string, file: string): { rows: TextRow[]; problems: RowProblem[] } {
  return parseRows(text, file, false);
}

function parseRows(text: string, file: string, requireLabel: boolean): { rows: TextRow[]; problems: RowProblem[] } {
  const problems: RowProblem[] = [];
  const rows: TextRow[] = [];
  const lines = text.replace(/^\uFEFF/, '').split('\n');
  const problem = (line: number, message: string, column?: number): void => {
    problems.push({ file, line, ...(column !== undefined ? { column } : {}), message, severity: 'error' });
  };

  lines.forEach((rawLine, index) => {
    const line = index + 1;
    const source = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (source.trim() === '') return;
    const columnOf = (key: string): number | undefined => {
      // Where the key is written, so the diagnostic underlines it; an escaped \"key\" inside a string won't match.
      const at = source.search(new RegExp(`"${key}"\\s*:`));
      return at >= 0 ? at + 1 : undefined;
    };

    let value: unknown;
    try {
      value = JSON.parse(source);
    } catch (e) {
      const message = (e as Error).message;
      const position = /position (\d+)/.exec(message);
      problem(line, `invalid JSON: ${message}`, position ? Number(position[1]) + 1 : undefined);
      return;
    }
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      problem(line, `expected a JSON object like {"text": ..., "label": ...}, got ${describe(value)}`, 1);
      return;
    }
    const obj = value as Record<string, unknown>;
    let ok = true;

    if (!('text' in obj)) {
      problem(line, 'missing "text"', 1);
      ok = false;
    } else if (typeof obj.text !== 'string' || obj.text.trim() === '') {
      problem(line, `"text" must be a non-empty string, got ${describe(obj.text)}`, columnOf('text'));
      ok = false;
    }
    if ('text_pair' in obj && typeof obj.text_pair !== 'string') {
      problem(line, `"text_pair" must be a string, got ${describe(obj.text_pair)}`, columnOf('text_pair'));
      ok = false;
    }
    for (const key of ['text', 'text_pair']) {
      const tooLong = typeof obj[key] === 'string' ? textSizeProblem(obj[key], `"${key}"`) : undefined;
      if (tooLong) {
        problem(line, tooLong, columnOf(key));
        ok = false;
      }
    }
    if (!('label' in obj)) {
      if (requireLabel) {
        problem(line, 'missing "label"', 1);
        ok = false;
      }
    } else {
      const labelProblem = checkLabel(obj.label);
      if (labelProblem) {
        problem(line, labelProblem, columnOf('label'));
        ok = false;
      }
    }
    if (!ok) return;

    const example: TextRow = { text: obj.text as string, line };
    if ('label' in obj) example.label = obj.label as Label;
    if (typeof obj.text_pair === 'string') example.textPair = obj.text_pair;
    rows.push(example);
  });

  // A file is one kind of task: lists of names (multi-label), single names, or numbers. Rows without a label
  // (unlabelled parsing) take no side.
  const labelled = rows.filter((r) => r.label !== undefined);
  const single = dropMinority(
    labelled,
    (r) => Array.isArray(r.label),
    (r, lists, singles) =>
      Array.isArray(r.label)
        ? `label ${JSON.stringify(r.label)} is a list (a multi-label row), but ${singles} other rows have a single label (a file is either multi-label, every label a list, or single-label)`
        : `label ${JSON.stringify(r.label)} is a single label, but ${lists} other rows have a list of labels (a multi-label file needs a list on every row, e.g. ${JSON.stringify([r.label])} or [])`,
    file,
    problems,
  );
  const sameKind = dropMinority(
    single,
    (r) => typeof r.label === 'number',
    (r, numbers, strings) =>
      typeof r.label === 'number'
        ? `label ${r.label} is a number, but ${strings} other rows have string labels (a file is either classification with string labels or regression with numeric ones)`
        : `label ${JSON.stringify(r.label)} is a string, but ${numbers} other rows have numeric labels (a file is either classification with string labels or regression with numeric ones)`,
    file,
    problems,
  );
  const kept = new Set(sameKind);
  const consistent = rows.filter((r) => r.label === undefined || kept.has(r));
  const final = dropMinority(
    consistent,
    (r) => r.textPair === undefined,
    (r, without, withPair) =>
      r.textPair === undefined
        ? `this row has no "text_pair", but ${withPair} other rows do (either every row is a text pair or none is)`
        : `this row has a "text_pair", but ${without} other rows do not (either every row is a text pair or none is)`,
    file,
    problems,
  );
  problems.sort((a, b) => a.line - b.line);
  return { rows: final, problems };
}

/** Reads and parses a JSONL file; throws when the file is missing or holds no usable row. */
export function readJsonl(path: string): ParsedJsonl {
  return readParsed(path, parseJsonlText);
}

/** As `readJsonl`, but rows need no label. */
export function readUnlabelledJsonl(path: string): { rows: TextRow[]; problems: RowProblem[] } {
  return readParsed(path, parseUnlabelledJsonlText);
}

function readParsed<T extends { rows: { line: number }[]; problems: RowProblem[] }>(
  path: string,
  parse: (text: string, file: string) => T,
): T {
  // A regular file of bounded size (a FIFO, directory or /dev/zero is refused by name before reading).
  const bytes = readRegularFileSync(path, MAX_JSONL_BYTES);
  const text = bytes.toString('utf8');
  const parsed = parse(text, path);
  // Invalid UTF-8 decodes to U+FFFD and would be trained on as if the user had written it: report those lines.
  if (text.includes('\uFFFD')) {
    const bad = invalidUtf8Lines(bytes);
    if (bad.size) {
      parsed.rows = parsed.rows.filter((r) => !bad.has(r.line));
      for (const [line, column] of bad) {
        parsed.problems.push({
          file: path,
          line,
          column,
          message: `invalid UTF-8 (byte ${column} of the line); save the file as UTF-8`,
          severity: 'error',
        });
      }
      parsed.problems.sort((a, b) => a.line - b.line);
    }
  }
  if (parsed.rows.length === 0) {
    const first = parsed.problems[0];
    const why = first ? ` (${parsed.problems.length} lines have problems; first: ${first.file}:${first.line}: ${first.message})` : '';
    throw new SpartanError(`${path} has no rows${why}`);
  }
  return parsed;
}

/** 1-based lines of `bytes` that are not valid UTF-8, with the 1-based byte column of the first bad byte. */
export function invalidUtf8Lines(bytes: Buffer): Map<number, number> {
  const bad = new Map<number, number>();
  const fatal = new TextDecoder('utf-8', { fatal: true });
  let start = 0;
  for (let line = 1; start <= bytes.length; line++) {
    let end = bytes.indexOf(0x0a, start);
    if (end < 0) end = bytes.length;
    const chunk = bytes.subarray(start, end);
    try {
      fatal.decode(chunk);
    } catch {
      // Find the first bad byte: the longest prefix that decodes (streaming mode allows an incomplete tail).
      let lo = 0;
      let hi = chunk.length;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        try {
          new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(0, mid), { stream: true });
          lo = mid;
        } catch {
          hi = mid - 1;
        }
      }
      // `lo` bytes decode when an incomplete sequence may end them: back up to that sequence's lead byte.
      let k = lo;
      let complete = true;
      try {
        new TextDecoder('utf-8', { fatal: true }).decode(chunk.subarray(0, lo));
      } catch {
        complete = false;
      }
      if (!complete) {
        while (k > 0 && (chunk[k - 1] & 0xc0) === 0x80) k--;
        if (k > 0 && chunk[k - 1] >= 0xc0) k--;
      }
      bad.set(line, k + 1);
    }
    start = end + 1;
  }
  return bad;
}

/**
 * Decides the task from the labels: numbers → regression, strings → classification over the distinct names.
 * `file` only names the data in error messages.
 */
export function inferTask(rows: Example[], file = 'the training file'): TaskInfo {
  if (rows.length === 0) throw new SpartanError(`${file} has no rows`);
  if (Array.isArray(rows[0].label)) return inferMultiLabel(rows, file);
  const numeric = typeof rows[0].label === 'number';
  const pair = rows.some((r) => r.textPair !== undefined);
  for (const r of rows) {
    if (Array.isArray(r.label)) {
      throw new SpartanError(
        `${file}:${r.line}: label ${JSON.stringify(r.label)} is a list (multi-label), but line ${rows[0].line} has the single label ${JSON.stringify(rows[0].label)}`,
      );
    }
    if ((typeof r.label === 'number') !== numeric) {
      throw new SpartanError(
        `${file}:${r.line}: label ${JSON.stringify(r.label)} mixes string and numeric labels (line ${rows[0].line} has ${JSON.stringify(rows[0].label)})`,
      );
    }
    if (pair && r.textPair === undefined) {
      throw new SpartanError(
        `${file}:${r.line}: this row has no "text_pair", but other rows do (either every row is a text pair or none is)`,
      );
    }
  }
  if (numeric) return { task: 'regression', labels: [], labelCounts: {}, pair };

  // Keyed by user data: no prototype, so labels named "__proto__" or "constructor" are counted like any other.
  const labelCounts: Record<string, number> = Object.create(null);
  for (const r of rows) labelCounts[r.label as string] = (labelCounts[r.label as string] ?? 0) + 1;
  const labels = Object.keys(labelCounts).sort(naturalCompare);
  if (labels.length < 2) {
    throw new SpartanError(
      `${file}: every row has the label ${JSON.stringify(labels[0])}; classification needs at least two distinct labels`,
    );
  }
  return { task: 'classification', labels, labelCounts: { ...labelCounts }, pair };
}

/** Multi-label: the label names are the union of the rows' lists; a row may carry none. */
function inferMultiLabel(rows: Example[], file: string): TaskInfo {
  const pair = rows.some((r) => r.textPair !== undefined);
  const labelCounts: Record<string, number> = Object.create(null);
  for (const r of rows) {
    if (!Array.isArray(r.label)) {
      throw new SpartanError(
        `${file}:${r.line}: label ${JSON.stringify(r.label)} is a single label, but line ${rows[0].line} has a list of labels (multi-label)`,
      );
    }
    if (pair && r.textPair === undefined) {
      throw new SpartanError(
        `${file}:${r.line}: this row has no "text_pair", but other rows do (either every row is a text pair or none is)`,
      );
    }
    for (const name of r.label) labelCounts[name] = (labelCounts[name] ?? 0) + 1;
  }
  const labels = Object.keys(labelCounts).sort(naturalCompare);
  if (labels.length === 0)
    throw new SpartanError(`${file}: every row has an empty label list; a multi-label task needs at least one label name`);
  return { task: 'multilabel', labels, labelCounts: { ...labelCounts }, pair };
}

/**
 * Problems for dev rows whose label the model cannot score: a class name absent from training, or a label of
 * the wrong kind (`labels` empty means regression).
 */
export function checkDevLabels(devRows: Example[], labels: string[], devFile: string, multiLabel = false): RowProblem[] {
  const known = new Set(labels);
  const problems: RowProblem[] = [];
  const add = (line: number, message: string): void => {
    problems.push({ file: devFile, line, message, severity: 'error' });
  };
  for (const r of devRows) {
    if (multiLabel) {
      if (!Array.isArray(r.label))
        add(
          r.line,
          `label ${JSON.stringify(r.label)} is not a list, but the training file is a multi-label task (give a list, e.g. ${JSON.stringify(typeof r.label === 'string' ? [r.label] : [])})`,
        );
      else
        for (const name of r.label) if (!known.has(name)) add(r.line, `label ${JSON.stringify(name)} does not occur in the training file`);
    } else if (Array.isArray(r.label)) {
      add(r.line, `label ${JSON.stringify(r.label)} is a list (multi-label), but the training file has one label per row`);
    } else if (labels.length === 0) {
      if (typeof r.label !== 'number')
        add(r.line, `label ${JSON.stringify(r.label)} is not a number, but the training file is a regression task`);
    } else if (typeof r.label !== 'string') {
      add(r.line, `label ${r.label} is a number, but the training labels are strings (${labels.map((l) => JSON.stringify(l)).join(', ')})`);
    } else if (!known.has(r.label)) {
      add(r.line, `label ${JSON.stringify(r.label)} does not occur in the training file`);
    }
  }
  return problems;
}

/**
 * Orders label names so that embedded numbers compare by value ("2" < "10"); everything else compares by
 * code unit, so case matters ("B" < "a") and the order does not depend on the user's locale.
 */
export function naturalCompare(a: string, b: string): number {
  const chunk = /(\d+|\D+)/g;
  const as = a.match(chunk) ?? [];
  const bs = b.match(chunk) ?? [];
  for (let i = 0; i < Math.min(as.length, bs.length); i++) {
    const x = as[i];
    const y = bs[i];
    if (x === y) continue;
    const xDigits = /^\d/.test(x);
    const yDigits = /^\d/.test(y);
    if (xDigits && yDigits) {
      // Compare as integers of any size: strip leading zeros, then the longer is larger, then lexicographic.
      const xs = x.replace(/^0+(?=\d)/, '');
      const ys = y.replace(/^0+(?=\d)/, '');
      if (xs.length !== ys.length) return xs.length - ys.length;
      if (xs !== ys) return xs < ys ? -1 : 1;
      continue;
    }
    return x < y ? -1 : 1;
  }
  if (as.length !== bs.length) return as.length - bs.length;
  // Equal up to leading zeros ("01" vs "1"): fall back to plain order so the sort is total.
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkLabel(label: unknown): string | undefined {
  if (Array.isArray(label)) {
    const seen = new Set<string>();
    for (const name of label) {
      if (typeof name !== 'string' || name === '')
        return `a multi-label "label" must be a list of non-empty strings, got ${describe(name)} in it`;
      if (seen.has(name)) return `label list repeats ${JSON.stringify(name)}`;
      seen.add(name);
    }
    return undefined;
  }
  if (typeof label === 'string') return label === '' ? '"label" must not be an empty string' : undefined;
  if (typeof label === 'number') {
    // JSON has no NaN/Infinity literals, but 1e999 parses to Infinity.
    return Number.isFinite(label) ? undefined : `"label" must be a finite number, got ${label}`;
  }
  return `"label" must be a string (a class name) or a number (a regression target) or a list of class names (multi-label), got ${describe(label)}`;
}

/**
 * Keeps the majority kind of row and reports the others, so a stray row is flagged rather than the whole
 * file. On a tie the rows for which `isA` is false are kept (string labels; text pairs).
 */
function dropMinority<R extends TextRow>(
  rows: R[],
  isA: (r: R) => boolean,
  message: (r: R, countA: number, countB: number) => string,
  file: string,
  problems: RowProblem[],
): R[] {
  const countA = rows.filter(isA).length;
  const countB = rows.length - countA;
  if (countA === 0 || countB === 0) return rows;
  const keepA = countA > countB;
  const kept: R[] = [];
  for (const r of rows) {
    if (isA(r) === keepA) {
      kept.push(r);
    } else {
      problems.push({ file, line: r.line, message: message(r, countA, countB), severity: 'error' });
    }
  }
  return kept;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string')
    return value.length > 40 ? `the string ${JSON.stringify(value.slice(0, 40))}…` : `the string ${JSON.stringify(value)}`;
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return `${typeof value} ${String(value)}`;
  return typeof value;
}
