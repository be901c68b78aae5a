/**
 * Micro-batches: the engine runs a batch of B rows as several graph runs of at most MICRO_BATCH_TOKENS padded
 * tokens each, picked for GEMM efficiency and memory. MLAS's fp32 GEMMs lose efficiency on tall matrices (K 768,
 * N 3072, one thread: 92 GFLOP/s at 1024 rows, 72 at 4096), and a 32×128 batch is 4096 rows per dense layer; the
 * activations of one run (kept for the backward pass when training) scale with its rows, so peak memory falls
 * too. Rows are sorted by length before they are cut, so each micro-batch is padded only to its own longest row.
 * Rows do not interact in the model, so a row's logits do not depend on the micro-batch it ran in, and training
 * sums the micro-batches' gradients (training/microBatch.ts).
 */

/**
 * Padded tokens per micro-batch (rows of each dense-layer GEMM). SPARTAN_MICRO_TOKENS overrides it for
 * measurements; 0 turns micro-batching off (one run per batch). 768, measured on the AMD EPYC (Zen 4) the speed issue
 * names, 2 threads, a roberta-base SPARTAN step at dropout 0.1, the sizes alternating on one training session
 * (scratch A/B over `accumulatedStep`'s maxTokens, medians of 8 pairs): 768 tokens 3.6 % faster than 512 at 16×128
 * and 5.3 % at 32×128; 1024 was 5.9 % faster at 16×128 but peaked at 1622 MB (`SPARTAN_MICRO_TOKENS=1024 node --import
 * tsx scripts/bench.ts --phase train`), over the issue's 1.5 GB. 768 peaks at 1426 MB there, because the attention
 * probabilities after dropout are recomputed in the backward pass instead of kept (models/robertaGraph.ts
 * `softmaxDropout`); 512 peaked at 1314 MB. Earlier, on an AVX2 EPYC with the code of then: 1024 tokens 9.75 s and
 * 1260 MB, 512 9.55 s and 965 MB, 256 10.69 s and 891 MB per 32×128 step; int8, 1024 7.23 s and 1259 MB, 512 6.86 s
 * and 1207 MB.
 */
const tokensOverride = process.env.SPARTAN_MICRO_TOKENS === undefined ? undefined : Number(process.env.SPARTAN_MICRO_TOKENS);
export const MICRO_BATCH_TOKENS = tokensOverride ?? 768;

/**
 * Training micro-batches of an int8 graph: 256 padded tokens, which keeps an int8 roberta-base training process
 * under 1 GB. Measured on 2 threads (Xeon, AVX-512 VNNI), SPARTAN, dropout 0.1 (`SPARTAN_MICRO_TOKENS=N node --import
 * tsx scripts/bench.ts --phase train --precision int8`, two runs each): 512 tokens 2.18/2.16 s per 32×128 step,
 * 1.12/1.21 s per 16×128 step, peak 1039/1054 MB; 256 tokens 2.32/2.34 s, 1.16/1.16 s, 896/935 MB. int8 weights
 * leave activations the larger share of the memory, so halving them pays; float32 keeps more rows (its GEMMs lose
 * more at 256 rows: 10.69 against 9.55 s at 512 on an AVX2 EPYC). SPARTAN_MICRO_TOKENS overrides both.
 */
export const INT8_TRAINING_MICRO_BATCH_TOKENS = tokensOverride ?? 256;

/**
 * The micro-batch size of a training session, for its training runs and its forward pass alone (the trainer's dev
 * set) alike: an evaluation holds the activations a training run would, so it is sized as one (int8: 256 tokens).
 */
export function trainingMicroBatchTokens(int8: boolean): number {
  return int8 ? INT8_TRAINING_MICRO_BATCH_TOKENS : MICRO_BATCH_TOKENS;
}

/**
 * Micro-batches of an inference session (classify, eval, serve, the audit's out-of-fold scoring): 1024 padded
 * tokens. Nothing is kept for a backward pass, so twice the rows cost little memory, and the larger GEMMs and half
 * the runs pay, in int8 most. Measured on 2 threads (Xeon, AVX-512 VNNI), roberta-base SPARTAN inference
 * (`SPARTAN_MICRO_TOKENS=N node --import tsx scripts/bench.ts --phase infer|infer-memory [--precision int8]`):
 * float32 32×128 1.99 / 1.94 / 1.97 s per batch at 512 / 1024 / 2048 tokens, 16×128 1.01 / 0.98 / 1.04 s; int8
 * 32×128 0.59 / 0.52 / 0.52 s, 16×128 0.31 / 0.27 / 0.28 s; a classify-like process peaks at 643 MB at 512, 655 at
 * 1024. A training session's forward pass alone (the trainer's dev set) keeps its training size: at 1024 it was no
 * faster (2.10 s per 32×128 batch either way) and the training process peaked at 1452–1463 MB instead of 1329.
 */
export const INFERENCE_MICRO_BATCH_TOKENS = tokensOverride ?? 1024;

/**
 * Cuts a batch into micro-batches of at most `maxTokens` padded tokens each (at least one row), rows sorted by
 * length, longest first (ties keep their order); greedily, so all but the last are full. `maxTokens` 0 or
 * Infinity: the batch as one micro-batch, in its order.
 */
export function splitMicroBatches<E extends { ids: ArrayLike<number> }>(examples: E[], maxTokens = MICRO_BATCH_TOKENS): E[][] {
  if (examples.length === 0) return [];
  if (!(maxTokens > 0) || !Number.isFinite(maxTokens)) return [examples];
  const sorted = examples
    .map((e, i) => ({ e, i }))
    .sort((a, b) => b.e.ids.length - a.e.ids.length || a.i - b.i)
    .map((x) => x.e);
  const out: E[][] = [];
  let start = 0;
  while (start < sorted.length) {
    // Each micro-batch starts at its longest row: it takes as many rows as fit at that length.
    const rows = Math.max(1, Math.floor(maxTokens / Math.max(1, sorted[start].ids.length)));
    out.push(sorted.slice(start, start + rows));
    start += rows;
  }
  return out;
}
