/**
 * Rows from the files a user names, and `--skip-invalid`, for every command: a file with invalid rows is refused
 * with the first problems as `file:line: reason`, unless --skip-invalid, in which case those rows are dropped and
 * reported (a human line on stderr). The CLI owns this policy; the engine only parses and lists the problems.
 */
import { Example, RowProblem, SpartanError, readJsonl, readUnlabelledJsonl } from '../engine';

/** Formats the first problems of a file for an error or warning message. */
export function describeProblems(problems: RowProblem[], max = 10): string {
  const lines = problems.slice(0, max).map((p) => `  ${p.file}:${p.line}${p.column ? `:${p.column}` : ''}: ${p.message}`);
  if (problems.length > max) lines.push(`  … and ${problems.length - max} more`);
  return lines.join('\n');
}

/**
 * The rows of a parsed file; rows with errors refuse it unless `skipInvalid`. `use` says what the command does
 * with the rows, for the message ("classify" → "use --skip-invalid to classify the others").
 */
export function acceptRows<R>(
  parsed: { rows: R[]; problems: RowProblem[] },
  file: string,
  skipInvalid: boolean,
  warn: (line: string) => void,
  use: string,
): R[] {
  const errors = parsed.problems.filter((p) => p.severity === 'error');
  if (errors.length && !skipInvalid) {
    throw new SpartanError(
      `${file}: ${errors.length} row(s) with problems (use --skip-invalid to ${use} the others):\n${describeProblems(errors)}`,
    );
  }
  if (parsed.problems.length) warn(`${file}: skipped ${errors.length} row(s):\n${describeProblems(parsed.problems)}`);
  return parsed.rows;
}

/** A labelled JSONL file's rows (see acceptRows). */
export function readRows(file: string, skipInvalid: boolean, warn: (line: string) => void, use = 'train on'): Example[] {
  return acceptRows(readJsonl(file), file, skipInvalid, warn, use);
}

/** A JSONL file whose labels are optional (classify, rank). */
export function readUnlabelledRows(file: string, skipInvalid: boolean, warn: (line: string) => void, use: string) {
  return acceptRows(readUnlabelledJsonl(file), file, skipInvalid, warn, use);
}
