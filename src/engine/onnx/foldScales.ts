/**
 * Folds a multiplication by a scalar constant into the Gemm that reads its product: Gemm(s·A, B, C) with alpha α
 * is Gemm(A, B, C) with alpha α·s (alpha scales A·B only), one pass over A fewer. The gradient rules emit such
 * products where a rule's constant factor meets the input-gradient GEMM of a linear — the GELU rule's ½, a
 * [512, 3072] pass per layer — and ONNX Runtime does not fold them into Gemm (its scale fusion is MatMul's).
 * Only a product that the Gemm alone reads is folded.
 */
import { Graph, Node, floatAttr } from './graph';

/**
 * Rewrites `g.nodes` in place, among the nodes from index `from` on (a training graph's backward pass: its forward
 * pass stays the inference graph's, value for value, and keeps its length); `alsoRead` names values read outside
 * `g.nodes` (outputs added later, a branch's outputs). Returns how many multiplications it removed.
 */
export function foldScalarMulsIntoGemms(g: Graph, opts: { from?: number; alsoRead?: Iterable<string> } = {}): number {
  const readers = new Map<string, number>();
  const read = (v: string) => readers.set(v, (readers.get(v) ?? 0) + 1);
  for (const node of g.nodes) node.inputs.forEach(read);
  for (const v of opts.alsoRead ?? []) read(v);
  for (const o of g.outputs) read(o.name);

  const region = new Set(g.nodes.slice(opts.from ?? 0));
  const removed = new Set<Node>();
  for (const gemm of region) {
    if (gemm.op !== 'Gemm') continue;
    for (const slot of [0, 1]) {
      const mul = g.producer.get(gemm.inputs[slot]);
      if (!mul || mul.op !== 'Mul' || !region.has(mul) || removed.has(mul) || readers.get(mul.outputs[0]) !== 1) continue;
      const k = mul.inputs.findIndex((i) => scalarValue(g, i) !== undefined);
      if (k < 0) continue;
      const other = mul.inputs[1 - k];
      // A broadcast Mul (a scalar times a scalar, or a [1] constant widening the shape) is not a plain scaling.
      if (g.shape(other).join() !== g.shape(mul.outputs[0]).join()) continue;
      const alpha = floatAttr(gemm, 'alpha', 1) * scalarValue(g, mul.inputs[k])!;
      if (alpha === 1) delete gemm.attrs.alpha;
      else gemm.attrs.alpha = { float: alpha };
      gemm.inputs[slot] = other;
      removed.add(mul);
    }
  }
  if (removed.size === 0) return 0;
  const kept = g.nodes.filter((n) => !removed.has(n));
  g.nodes.splice(0, g.nodes.length, ...kept);
  for (const mul of removed) {
    g.producer.delete(mul.outputs[0]);
    g.values.delete(mul.outputs[0]);
    for (const i of mul.inputs) readers.set(i, readers.get(i)! - 1);
  }
  // A scalar no node reads any more goes too: ONNX Runtime would warn about it on every session it builds.
  for (const c of [...new Set([...removed].flatMap((m) => m.inputs))])
    if (readers.get(c) === 0 && scalarValue(g, c) !== undefined) g.removeConstant(c);
  return removed.size;
}

/** The value of a one-element float32 constant held in memory, else undefined. */
function scalarValue(g: Graph, name: string): number | undefined {
  const c = g.constants.find((k) => k.name === name);
  if (!c || c.type !== 'float32' || c.file || c.data.length !== 1) return undefined;
  return (c.data as Float32Array)[0];
}
