/**
 * Dropout masks for the training graphs: windows at seeded random offsets into a pool of scaled Bernoulli(1 − p)
 * draws (each element 0 or 1/(1 − p) as float32, so the graph applies dropout with one multiply), handed to ONNX
 * Runtime without copying. Every element of a mask is an independent-looking Bernoulli draw; masks of different
 * sites and steps are windows of the same pool at unrelated offsets, which is as good for regularisation and
 * costs nothing per step (ONNX Runtime's Dropout kernel spent ~12 ns per element).
 */
import { Rng, createRng } from '../util/random';

/** Smallest pool: large enough that windows of typical masks rarely overlap much. */
const MIN_POOL = 1 << 22;

export class DropoutMaskPool {
  private pool = new Float32Array(0);
  private allOnes = new Float32Array(0);
  private readonly rng: Rng;
  /** The value of a kept element: fl(1/(1 − p)), the inverted-dropout scale. */
  readonly keep: number;

  constructor(
    readonly p: number,
    seed: number,
  ) {
    this.rng = createRng(seed ^ 0x5bd1e995);
    this.keep = Math.fround(1 / (1 - p));
  }

  /** A mask of `n` elements (0 = dropped, `keep` = kept), valid until the next call that grows the pool. */
  take(n: number): Float32Array {
    if (this.pool.length < 4 * n || this.pool.length === 0) this.refill(Math.max(MIN_POOL, 4 * n));
    const offset = Math.floor(this.rng.next() * (this.pool.length - n + 1));
    return this.pool.subarray(offset, offset + n);
  }

  /** `n` ones: the keep-mask of a forward pass without dropout (an evaluation on the training graph). */
  ones(n: number): Float32Array {
    if (this.allOnes.length < n) this.allOnes = new Float32Array(n).fill(1);
    return this.allOnes.subarray(0, n);
  }

  private refill(size: number): void {
    const pool = new Float32Array(size);
    // One draw per element: packing several draws per 32-bit number would quantise p.
    for (let i = 0; i < size; i++) pool[i] = this.rng.next() >= this.p ? this.keep : 0;
    this.pool = pool;
  }
}
