/**
 * The SPARTAN memory (arXiv 2211.16634), exactly as the authors' code computes it, inserted after every layer's
 * post-LayerNorm output x ([N, d]):
 *
 *   s = x·Pᵀ                         parent logits [N, Np]
 *   g = softmax(s masked to its top-K; the others −∞ before the softmax)
 *   a = softmax over each parent's Nc children of (x·CKᵀ)/τ     [N, Np, Nc]
 *   out = x + Σ_p g_p · Σ_j a_pj · CV_{p·Nc+j}                   (no LayerNorm after it)
 *
 * The children of all parents are computed densely (two [N, d]×[d, Np·Nc] GEMMs) and the gates of the parents
 * outside the top-K are exactly zero, which is the same arithmetic as gathering the kept parents: with Np·Nc = 48
 * the dense form is cheaper than a gather and differentiates with standard ops only.
 */
import { ModelBuilder, MethodHooks } from '../models/robertaGraph';
import { MemoryGeometry, RobertaConfig } from '../types';

export const DEFAULT_GEOMETRY: MemoryGeometry = { parents: 16, children: 3, topK: 8, temperature: 1.6 };

export function spartanNames(layer: number) {
  const p = `roberta.encoder.layer.${layer}`;
  return {
    parentKeys: `${p}.spartan_experts.weight`,
    childKeys: `${p}.spartan.weight`,
    childValues: `${p}.spartan_value.weight`,
  };
}

/** Encoder layers are numbered below this (RoBERTa checkpoints have 6 to 48). */
const MAX_LAYERS = 1024;

/**
 * The encoder layers that hold a SPARTAN memory — all three of `spartanNames(layer)` — among a file's tensor
 * names, ascending. The extension's routing command asks this of a memory header it read without the tensors.
 */
export function spartanLayersOf(tensorNames: Iterable<string>): number[] {
  const names = new Set(tensorNames);
  const layers: number[] = [];
  for (let i = 0; i < MAX_LAYERS; i++) {
    const n = spartanNames(i);
    if (names.has(n.parentKeys) && names.has(n.childKeys) && names.has(n.childValues)) layers.push(i);
  }
  return layers;
}

/** Shapes of every memory tensor, by name. */
export function spartanShapes(config: RobertaConfig, geo: MemoryGeometry): Map<string, number[]> {
  const d = config.hiddenSize;
  const shapes = new Map<string, number[]>();
  for (let i = 0; i < config.numLayers; i++) {
    const n = spartanNames(i);
    shapes.set(n.parentKeys, [geo.parents, d]);
    shapes.set(n.childKeys, [geo.parents * geo.children, d]);
    shapes.set(n.childValues, [geo.parents * geo.children, d]);
  }
  return shapes;
}

export function validateGeometry(geo: MemoryGeometry): string | undefined {
  const ints: (keyof MemoryGeometry)[] = ['parents', 'children', 'topK'];
  for (const k of ints) if (!Number.isInteger(geo[k]) || geo[k] < 1) return `${k} must be a positive integer (got ${geo[k]})`;
  if (geo.topK > geo.parents) return `top-k (${geo.topK}) cannot exceed the number of parents (${geo.parents})`;
  if (!(geo.temperature > 0)) return `temperature must be positive (got ${geo.temperature})`;
  return undefined;
}

/** Graph hooks that add a memory after every layer. */
export function spartanHooks(geo: MemoryGeometry): MethodHooks {
  return {
    layerOutput(b: ModelBuilder, layer: number, x: string): string {
      const { g } = b;
      const names = spartanNames(layer);
      const np = geo.parents,
        nc = geo.children;
      const rows = g.shape(x)[0]; // N, or B where the last layer computes only the <s> rows

      // Parent gates: softmax over the top-K parent logits.
      const s = g.gemm(x, b.param(names.parentKeys), undefined, { transB: true }, 'parent_logits'); // [N, Np]
      let gates: string;
      if (geo.topK < np) {
        const [top] = g.topK(s, geo.topK);
        const kth = g.slice(top, [geo.topK - 1], [geo.topK], [1], [rows, 1]);
        const keep = g.greaterOrEqual(s, kth);
        gates = g.softmax(g.where(keep, s, g.constF(-Infinity)), -1, 'parent_gates');
      } else {
        gates = g.softmax(s, -1, 'parent_gates');
      }

      // Child attention within each parent's group, temperature on the children only.
      const c = g.gemm(x, b.param(names.childKeys), undefined, { transB: true, alpha: 1 / geo.temperature }, 'child_logits');
      const a = g.softmax(g.reshapeTo(c, [-1, np, nc], [rows, np, nc]), -1, 'child_attn'); // [N, Np, Nc]
      const weights = g.reshapeTo(g.mul(a, g.unsqueeze(gates, [-1])), [-1, np * nc], [rows, np * nc]);
      const read = g.matmul(weights, b.param(names.childValues), 'memory_read'); // [N, d]
      return g.add(x, read, 'memory_out');
    },
  };
}
