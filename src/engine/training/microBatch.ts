/**
 * Gradient accumulation over micro-batches (data/microBatches.ts: why and how they are cut): one optimiser step
 * over a batch of B rows runs the training graph on each micro-batch and sums their gradients. Every micro-batch
 * weighs its rows by 1/B (not 1/its own size), so the summed losses and gradients are the full batch's mean loss
 * and its gradient: the same numbers up to the order of float32 additions.
 */
import { EncodedExample, padBatch } from '../data/batching';
import { splitMicroBatches, trainingMicroBatchTokens } from '../data/microBatches';
import { gradOutputName, OUTPUT_GRAD_SQUARES, OUTPUT_LOSS } from '../runtime/compile';
import { GraphSession } from '../runtime/session';
import { TaskType, TensorMap } from '../types';

export interface AccumulatedStep {
  /** Mean loss over the whole batch. */
  loss: number;
  /** Gradient of the mean loss, by trained tensor name. */
  grads: Map<string, Float32Array>;
  /** Σ g² over all of `grads` (float32 sums; the global norm's square, for clipping: optimizer.ts clipScaleOfSquares). */
  gradSquares: number;
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
  const maxTokens = opts.maxTokens ?? trainingMicroBatchTokens(session.graph.int8);
  const parts = splitMicroBatches(examples, maxTokens);
  let loss = 0;
  let grads: Map<string, Float32Array> | undefined;
  let squares = 0;
  for (let p = 0; p < parts.length; p++) {
    const out = await session.run(params, padBatch(parts[p], opts.padId), opts.task, opts.numLabels, examples.length);
    loss += (out[OUTPUT_LOSS].data as Float32Array)[0];
    if (!grads) {
      // The first micro-batch's output buffers become the accumulators (ONNX Runtime hands over fresh buffers);
      // a one-run step's Σ g² is the graph's own.
      grads = new Map(names.map((n) => [n, out[gradOutputName(n)].data as Float32Array]));
      if (parts.length === 1) squares = (out[OUTPUT_GRAD_SQUARES].data as Float32Array)[0];
      continue;
    }
    // The last micro-batch's accumulation also sums the squares of the totals, in the same pass.
    const last = p === parts.length - 1;
    for (const n of names) {
      const acc = grads.get(n)!,
        g = out[gradOutputName(n)].data as Float32Array;
      if (last) squares += addSquaring(acc, g);
      else for (let i = 0; i < acc.length; i++) acc[i] += g[i];
    }
  }
  return { loss, grads: grads!, gradSquares: squares, microBatches: parts.length };
}

/** acc += g in place; returns Σ acc² of the sums (float32 values, summed in float64). */
function addSquaring(acc: Float32Array, g: Float32Array): number {
  let s = 0;
  for (let i = 0; i < acc.length; i++) {
    const v = (acc[i] += g[i]);
    s += v * v;
  }
  return s;
}
