/**
 * From parsed examples to the int64/float32 buffers the ONNX graphs take: tokenization with truncation,
 * batch composition (seeded shuffling and length bucketing) and padding with RoBERTa position ids.
 */
import { SpartanError, TaskType } from '../types';
import { createRng, shuffleInPlace } from '../util/random';
import type { RobertaTokenizer } from '../tokenizers/robertaTokenizer';
import type { Example } from './jsonl';

export interface EncodedExample {
  /** Token ids including <s> … </s>, already truncated to the max length. */
  ids: Int32Array | number[];
  /** Class index for classification, the float target for regression (0 for multi-label). */
  label: number;
  /** Multi-label: the indices of the labels the row carries (possibly none). */
  labelSet?: number[];
  /** 1-based source line, so per-example results can point back at the file. */
  line: number;
}

export interface EncodedSet {
  examples: EncodedExample[];
  /** How many examples lost tokens to truncation. */
  truncated: number;
}

export interface PaddedBatch {
  batch: number;
  seqLen: number;
  /** [batch, seqLen], padId after each row's real tokens. */
  inputIds: BigInt64Array;
  /** [batch, seqLen], 1 for real tokens, 0 for padding. */
  attentionMask: Float32Array;
  /** [batch, seqLen], as RobertaEmbeddings: padId + 1-based index of the real token; padId for padding. */
  positionIds: BigInt64Array;
  /** [batch]: class index (as a float) or regression target. */
  labels: Float32Array;
  /** Multi-label: each row's label indices. */
  labelSets?: number[][];
}

export interface BatchOptions {
  shuffle: boolean;
  seed: number;
  /** Group examples of similar length so less compute is spent on padding. */
  bucket: boolean;
}

/**
 * Examples per bucketing chunk = batchSize × this. Large enough that each chunk's sorted batches are nearly
 * uniform in length, small enough that batches still mix examples from across the (shuffled) data.
 */
export const BUCKET_CHUNK_BATCHES = 50;

/**
 * Tokenizes every row. Classification labels become their index in `labels` (the output order of the head);
 * a label not in `labels` is an error here because dev files should have been checked with `checkDevLabels`.
 * `file` only names the data in error messages.
 */
export function encodeExamples(
  rows: Example[],
  tokenizer: Pick<RobertaTokenizer, 'encode'>,
  task: TaskType,
  labels: string[],
  maxLength: number,
  file = 'data',
): EncodedSet {
  const labelIndex = new Map(labels.map((name, i) => [name, i]));
  const examples: EncodedExample[] = [];
  let truncated = 0;
  for (const row of rows) {
    let label = 0;
    let labelSet: number[] | undefined;
    if (task === 'multilabel') {
      if (!Array.isArray(row.label))
        throw new SpartanError(`${file}:${row.line}: label ${JSON.stringify(row.label)} is not a list, but the task is multi-label`);
      labelSet = row.label.map((name) => {
        const index = labelIndex.get(name);
        if (index === undefined)
          throw new SpartanError(
            `${file}:${row.line}: label ${JSON.stringify(name)} is not one of the task's labels (${labels.map((l) => JSON.stringify(l)).join(', ')})`,
          );
        return index;
      });
    } else if (task === 'regression') {
      if (typeof row.label !== 'number')
        throw new SpartanError(`${file}:${row.line}: label ${JSON.stringify(row.label)} is not a number, but the task is regression`);
      label = row.label;
    } else {
      const index = typeof row.label === 'string' ? labelIndex.get(row.label) : undefined;
      if (index === undefined)
        throw new SpartanError(
          `${file}:${row.line}: label ${JSON.stringify(row.label)} is not one of the task's labels (${labels.map((l) => JSON.stringify(l)).join(', ')})`,
        );
      label = index;
    }
    const encoded = tokenizer.encode(row.text, row.textPair, maxLength);
    if (encoded.truncated) truncated++;
    examples.push({ ids: Int32Array.from(encoded.ids), label, line: row.line, ...(labelSet ? { labelSet } : {}) });
  }
  return { examples, truncated };
}

/**
 * Splits example indices into batches; every index appears exactly once and the last batch may be short.
 *
 * - shuffle, no bucket: a seeded permutation cut into batches.
 * - shuffle + bucket: seeded permutation, cut into chunks of batchSize×50, each chunk sorted by length and cut
 *   into batches, then the batch order is shuffled (so long and short batches alternate through the epoch).
 * - no shuffle: indices in order; with bucket, each chunk is still sorted by length (stable) and batches keep
 *   chunk order — deterministic without a seed, for evaluation.
 *
 * The same (lengths, batchSize, options) always give the same batches; pass seed + epoch for a new order each epoch.
 */
export function makeBatches(lengths: number[], batchSize: number, opts: BatchOptions): number[][] {
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new SpartanError(`batch size must be a positive integer, got ${batchSize}`);
  const rng = createRng(opts.seed);
  const order = lengths.map((_, i) => i);
  if (opts.shuffle) shuffleInPlace(order, rng);

  let batches: number[][] = [];
  if (opts.bucket) {
    const chunkSize = batchSize * BUCKET_CHUNK_BATCHES;
    for (let start = 0; start < order.length; start += chunkSize) {
      // Array.prototype.sort is stable, so equal lengths keep their (shuffled or original) order.
      const chunk = order.slice(start, start + chunkSize).sort((a, b) => lengths[a] - lengths[b]);
      batches.push(...cut(chunk, batchSize));
    }
    if (opts.shuffle) batches = shuffleInPlace(batches, rng);
  } else {
    batches = cut(order, batchSize);
  }
  return batches;
}

/**
 * Right-pads examples into one batch. Without `length` the batch is as long as its longest example; with it
 * every row is padded to exactly `length` (the authors' protocol pads to 128), and a longer example is an error.
 */
export function padBatch(examples: EncodedExample[], padId: number, length?: number): PaddedBatch {
  if (examples.length === 0) throw new SpartanError('cannot pad an empty batch');
  const longest = examples.reduce((m, e) => Math.max(m, e.ids.length), 0);
  const seqLen = length ?? longest;
  if (longest > seqLen) {
    const offender = examples.find((e) => e.ids.length > seqLen)!;
    throw new SpartanError(`line ${offender.line}: ${offender.ids.length} tokens do not fit the padded length ${seqLen}`);
  }
  const batch = examples.length;
  const inputIds = new BigInt64Array(batch * seqLen).fill(BigInt(padId));
  const attentionMask = new Float32Array(batch * seqLen);
  const positionIds = new BigInt64Array(batch * seqLen).fill(BigInt(padId));
  const labels = new Float32Array(batch);
  examples.forEach((example, row) => {
    const base = row * seqLen;
    for (let t = 0; t < example.ids.length; t++) {
      inputIds[base + t] = BigInt(example.ids[t]);
      attentionMask[base + t] = 1;
      // RobertaEmbeddings.create_position_ids_from_input_ids: padding_idx + cumsum(mask); positions start at
      // padId + 1 because rows 0..padId of the position table are reserved.
      positionIds[base + t] = BigInt(padId + t + 1);
    }
    labels[row] = example.label;
  });
  const labelSets = examples[0].labelSet ? examples.map((e) => e.labelSet ?? []) : undefined;
  return { batch, seqLen, inputIds, attentionMask, positionIds, labels, ...(labelSets ? { labelSets } : {}) };
}

/** Same as `padBatch(examples, padId, length)`: every row padded to exactly `length`. */
export function padToLength(examples: EncodedExample[], padId: number, length: number): PaddedBatch {
  return padBatch(examples, padId, length);
}

function cut(indices: number[], size: number): number[][] {
  const out: number[][] = [];
  for (let i = 0; i < indices.length; i += size) out.push(indices.slice(i, i + size));
  return out;
}
