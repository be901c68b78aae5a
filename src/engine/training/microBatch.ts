/**
 * Gradient accumulation over micro-batches (data/microBatches.ts: why and how they are cut): one optimiser step
 * over a batch of B rows runs the training graph on each micro-batch and sums their gradients. Every micro-batch
 * weighs its rows by 1/B (not 1/its own size), so the summed losses and gradients are the full batch's mean loss
 * and its gradient: the same numbers up to the order of float32 additions.
 */
import { EncodedExample, padBatch } from '../data/batching';
import { INT8_TRAINING_MICRO_BATCH_TOKENS, MICRO_BATCH_TOKENS, splitMicroBatches } from '../data/microBatches';
import { gradOutputName, OUTPUT_LOSS } from '../runtime/compile';
import { GraphSession } from '../runtime/session';
import { TaskType, TensorMap } from '../types';

export interface AccumulatedStep {
  /** Mean loss over the whole batch. */
  loss: number;
  /** Gradient of the mean loss, by trained tensor name. */
  grads: Map<string, Float32Array>;
  microBatches: number;
}

/** One step's loss and gradients over `examples`, accumulated over micro-batches (see the module comment). */
export async function accumulatedStep(
  session: GraphSession,
  params: TensorMap,
  examples: EncodedExample[],
  names: string[],
  opts: { padId: number; task: TaskType; numLabels: number; maxTokens?: number },
): Promise<AccumulatedStep> {
  const maxTokens = opts.maxTokens ?? (session.graph.int8 ? INT8_TRAINING_MICRO_BATCH_TOKENS : MICRO_BATCH_TOKENS);
  const parts = splitMicroBatches(examples, maxTokens);
  let loss = 0;
  let grads: Map<string, Float32Array> | undefined;
  for (const part of parts) {
    const out = await session.run(params, padBatch(part, opts.padId), opts.task, opts.numLabels, examples.length);
    loss += (out[OUTPUT_LOSS].data as Float32Array)[0];
    if (!grads) {
      // The first micro-batch's output buffers become the accumulators (ONNX Runtime hands over fresh buffers).
      grads = new Map(names.map((n) => [n, out[gradOutputName(n)].data as Float32Array]));
      continue;
    }
    for (const n of names) {
      const acc = grads.get(n)!,
        g = out[gradOutputName(n)].data as Float32Array;
      for (let i = 0; i < acc.length; i++) acc[i] += g[i];
    }
  }
  return { loss, grads: grads!, microBatches: parts.length };
}
