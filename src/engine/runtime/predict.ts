/**
 * Batched prediction over encoded examples: logits for every example in input order, with length bucketing so
 * short texts are not padded to the longest text of the file, each batch run as micro-batches
 * (data/microBatches.ts; `maxTokens` overrides their size). The session may be an inference or a training one.
 */
import { EncodedExample, makeBatches, padBatch } from '../data/batching';
import { INFERENCE_MICRO_BATCH_TOKENS, splitMicroBatches, trainingMicroBatchTokens } from '../data/microBatches';
import { TaskType, TensorMap } from '../types';
import { OUTPUT_LOGITS } from './compile';
import { GraphSession } from './session';

export async function predictLogits(
  session: GraphSession,
  params: TensorMap,
  examples: EncodedExample[],
  opts: { batchSize: number; padId: number; task: TaskType; numLabels: number; signal?: AbortSignal; maxTokens?: number },
): Promise<Float32Array[]> {
  const out = new Array<Float32Array>(examples.length);
  const batches = makeBatches(
    examples.map((e) => e.ids.length),
    opts.batchSize,
    { shuffle: false, seed: 0, bucket: true },
  );
  // A training session evaluates at its training size; an inference session at its own (data/microBatches.ts).
  const maxTokens =
    opts.maxTokens ??
    (session.graph.gradientSwitch !== undefined ? trainingMicroBatchTokens(session.graph.int8) : INFERENCE_MICRO_BATCH_TOKENS);
  for (const indices of batches) {
    // Each batch runs as micro-batches sized for GEMM efficiency; a row's logits do not depend on its company.
    for (const part of splitMicroBatches(
      indices.map((i) => ({ i, ids: examples[i].ids })),
      maxTokens,
    )) {
      opts.signal?.throwIfAborted();
      const batch = padBatch(
        part.map((p) => examples[p.i]),
        opts.padId,
      );
      // A training session (the trainer's dev set) runs its forward pass alone.
      const result = await session.run(params, batch, opts.task, opts.numLabels, undefined, { forwardOnly: true });
      const logits = result[OUTPUT_LOGITS].data as Float32Array;
      part.forEach((p, row) => (out[p.i] = logits.slice(row * opts.numLabels, (row + 1) * opts.numLabels)));
    }
  }
  return out;
}

/** Softmax of one row of logits. */
export function softmax(logits: Float32Array): number[] {
  const max = Math.max(...logits);
  const e = Array.from(logits, (v) => Math.exp(v - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / s);
}

export function argmax(v: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < v.length; i++) if (v[i] > v[best]) best = i;
  return best;
}
