/**
 * Optimisers over the trained tensors (a few MB at most, so plain loops over Float32Arrays are cheap next to one
 * forward pass). Both update the tensors in place.
 */
import { TensorMap } from '../types';

export type OptimizerName = 'adamw' | 'sgd';

export interface Optimizer {
  /** One update with learning rate `lr`; `grads` holds ∂(mean loss)/∂tensor for each trained tensor. */
  step(params: TensorMap, grads: Map<string, Float32Array>, lr: number): void;
}

/** Plain SGD: w ← w − lr·g (no momentum, weight decay, clipping or schedule). */
export class Sgd implements Optimizer {
  step(params: TensorMap, grads: Map<string, Float32Array>, lr: number): void {
    for (const [name, g] of grads) {
      const w = params.get(name)!.data;
      for (let i = 0; i < w.length; i++) w[i] -= lr * g[i];
    }
  }
}

export interface AdamWOptions {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
  /** Tensors that get no weight decay (biases and LayerNorm parameters, as Hugging Face's Trainer does). */
  noDecay: (name: string) => boolean;
}

/** AdamW (Loshchilov & Hutter) with bias correction, as torch.optim.AdamW. */
export class AdamW implements Optimizer {
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();
  private t = 0;
  constructor(private readonly opts: AdamWOptions) {}

  step(params: TensorMap, grads: Map<string, Float32Array>, lr: number): void {
    this.t++;
    const { beta1, beta2, eps } = this.opts;
    const c1 = 1 - Math.pow(beta1, this.t);
    const c2 = 1 - Math.pow(beta2, this.t);
    for (const [name, g] of grads) {
      const w = params.get(name)!.data;
      let m = this.m.get(name),
        v = this.v.get(name);
      if (!m || !v) {
        m = new Float32Array(w.length);
        v = new Float32Array(w.length);
        this.m.set(name, m);
        this.v.set(name, v);
      }
      const decay = this.opts.noDecay(name) ? 0 : lr * this.opts.weightDecay;
      const stepSize = lr / c1;
      const sqrtC2 = Math.sqrt(c2);
      for (let i = 0; i < w.length; i++) {
        const gi = g[i];
        m[i] = beta1 * m[i] + (1 - beta1) * gi;
        v[i] = beta2 * v[i] + (1 - beta2) * gi * gi;
        w[i] -= decay * w[i] + stepSize * (m[i] / (Math.sqrt(v[i]) / sqrtC2 + eps));
      }
    }
  }
}

/** Scales the gradients so their global L2 norm is at most `maxNorm`; returns the norm before clipping. */
export function clipGradNorm(grads: Map<string, Float32Array>, maxNorm: number): number {
  let sq = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sq += g[i] * g[i];
  const norm = Math.sqrt(sq);
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= s;
  }
  return norm;
}

/** Linear warm-up from 0 to `peak` over `warmup` steps, then linear decay to 0 at `total` (HF's linear schedule). */
export function linearSchedule(step: number, total: number, warmup: number, peak: number): number {
  if (step < warmup) return (peak * (step + 1)) / Math.max(1, warmup);
  return peak * Math.max(0, (total - step) / Math.max(1, total - warmup));
}
