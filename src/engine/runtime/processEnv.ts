/**
 * Environment for processes that train. Since training runs in micro-batches (data/microBatches.ts), a run's live
 * activations are small, and training sessions keep ONNX Runtime's arena like inference ones: blocks are re-used
 * across steps, not mapped and faulted in afresh each run. glibc is told to back its large blocks with transparent
 * huge pages (2 MiB faults, not 4 KiB ones). Measured on 2 threads (Xeon with AVX-512 VNNI), roberta-base SPARTAN,
 * dropout 0.1, 512-token micro-batches (`node --import tsx scripts/bench.ts --phase train` and `--phase sst2`):
 *   - arena on, hugetlb=1 (this):                 32×128 7.31 s, 16×128 3.62 s, SST-2 rows 32.0 ex/s; peak 1265 MB
 *   - arena on, no tunables:                      7.47 s, 3.69 s, 31.1 ex/s; 1261 MB
 *   - arena off, hugetlb=1 + 1 MiB mmap threshold (before: every block ≥ 1 MiB mapped per run and returned):
 *                                                 9.08 s, 4.36 s, 22.8 ex/s; 928 MB
 *   - arena off, no memory pattern, 32 MiB mmap threshold: 7.69 s, 3.71 s, 30.3 ex/s; 1117 MB
 * The memory pattern was on in the first three; session.ts has turned it off everywhere since (less memory, the
 * same speed). Blocks of 1 MiB and more are mapped (a fixed mmap threshold) so that freeing them returns them: the
 * initializers' staging copies that ONNX Runtime frees once it has prepacked them (runtime/sessionBuild.ts) would
 * otherwise stay in glibc's heap, whose threshold grows to the largest block freed. With the arena on, activations
 * are re-used, not mapped per run. Measured as above: int8 training peak 1065 → 865 MB (2.85 → 2.54 s at 32×128),
 * float32 1312 → 1298 MB at the same speed. glibc reads tunables at start-up, hence an environment variable, set by
 * bin/spartan.js, the extension and the benchmarks when they start engine processes.
 */
export const GLIBC_TUNABLES = 'glibc.malloc.hugetlb=1:glibc.malloc.mmap_threshold=1048576';

/** `env` with the training tunables added (a GLIBC_TUNABLES already in `env` wins). */
export function withTrainingEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { GLIBC_TUNABLES, ...env };
}
