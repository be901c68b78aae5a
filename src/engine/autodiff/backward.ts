/**
 * Reverse-mode differentiation of a `Graph`: appends the nodes that compute ∂loss/∂w for each requested input w,
 * using the rules of `derivatives.ts`.
 *
 * Only what is needed is built: a value gets a gradient only if it depends on a requested input (forward
 * reachability) and the loss depends on it (the reverse sweep starts at the loss). So the frozen backbone's
 * weights never get gradients and their matmuls cost one GEMM backwards (for the activation), not two.
 */
import { Graph, Node } from '../onnx/graph';
import { CHAIN_DERIVATIVES, DERIVATIVES, NON_DIFFERENTIABLE } from './derivatives';

/**
 * Adds gradient nodes to `g` for `loss` (a scalar) with respect to each of `wrt`, and returns the name of each
 * gradient value (in `wrt` order). A requested input the loss does not depend on gets an explicit zero tensor.
 */
export function buildBackward(g: Graph, loss: string, wrt: string[]): string[] {
  const forwardNodes = [...g.nodes];
  const needsGrad = new Set<string>(wrt);
  for (const node of forwardNodes) {
    if (NON_DIFFERENTIABLE.has(node.op)) continue;
    if (node.inputs.some((i) => needsGrad.has(i))) {
      for (const o of node.outputs) if (g.info(o).type === 'float32') needsGrad.add(o);
    }
  }
  if (!needsGrad.has(loss)) throw new Error('autodiff: the loss does not depend on any trainable tensor');

  // Contributions to each value's gradient, summed lazily when the value's producer is reached.
  const contributions = new Map<string, string[]>();
  const add = (value: string, grad: string) => {
    const list = contributions.get(value);
    if (list) list.push(grad);
    else contributions.set(value, [grad]);
  };
  const total = (value: string): string | undefined => {
    const list = contributions.get(value);
    if (!list) return undefined;
    const s = g.sum(list);
    contributions.set(value, [s]);
    return s;
  };

  add(loss, g.constF(1));
  checkChains(g, forwardNodes);
  for (let n = forwardNodes.length - 1; n >= 0; n--) {
    const node = forwardNodes[n];
    if (!node.inputs.some((i) => needsGrad.has(i))) continue;
    const dy = node.outputs.map((o) => (needsGrad.has(o) ? total(o) : undefined));
    if (dy.every((d) => d === undefined)) continue;
    const chain = g.chains.get(node.outputs[0]);
    if (chain) {
      // The chain's rule gives its input's gradient; its inner nodes, reached next, then have none and are skipped.
      // A value it reads that the graph builder registered in `g.recompute` is recomputed, as for a node's rule.
      const reads = Object.fromEntries(Object.entries(chain.reads).map(([k, v]) => [k, g.recompute.get(v)?.() ?? v]));
      if (needsGrad.has(chain.input)) add(chain.input, CHAIN_DERIVATIVES[chain.rule](g, dy[0]!, reads));
      continue;
    }
    const grads = differentiateNode(g, node, dy, (i) => needsGrad.has(node.inputs[i]));
    node.inputs.forEach((input, i) => {
      const gi = grads[i];
      if (gi !== undefined && needsGrad.has(input)) add(input, gi);
    });
  }

  return wrt.map((w) => {
    const grad = total(w);
    if (grad !== undefined) return grad;
    // Not reached from the loss (e.g. a memory after the last layer feeding nothing): its gradient is zero.
    return g.mul(w, g.constF(0));
  });
}

/**
 * A chain's rule replaces its inner nodes' rules, so an inner value read by anything outside the chain would lose
 * that reader's gradient: refuse such a graph.
 */
function checkChains(g: Graph, nodes: Node[]): void {
  if (g.chains.size === 0) return;
  const readers = new Map<string, number>();
  for (const node of nodes) for (const i of node.inputs) readers.set(i, (readers.get(i) ?? 0) + 1);
  const outputs = new Set(g.outputs.map((o) => o.name));
  for (const [output, chain] of g.chains)
    for (const v of chain.inner)
      if (readers.get(v) !== 1 || outputs.has(v))
        throw new Error(`autodiff: ${v}, inside the chain to ${output}, is read outside it (${readers.get(v) ?? 0} readers)`);
}

/**
 * Applies `node`'s gradient rule to the gradients `dy` of its outputs. The forward values the rule reads at run
 * time go through `x(i)` / `y(k)`: a value the graph builder registered in `g.recompute` (a dropout output, whose
 * input and one-byte mask the graph keeps anyway) is recomputed here, once per rule, instead of being held from
 * the forward pass — for every rule alike, so no rule has to remember to ask.
 */
export function differentiateNode(
  g: Graph,
  node: Node,
  dy: (string | undefined)[],
  wants: (inputIndex: number) => boolean,
): (string | undefined)[] {
  const rule = DERIVATIVES[node.op];
  if (!rule) throw new Error(`autodiff: no gradient rule for ${node.op} (add one to derivatives.ts)`);
  const recomputed = new Map<string, string>();
  const read = (value: string): string => {
    const recompute = g.recompute.get(value);
    if (!recompute) return value;
    let v = recomputed.get(value);
    if (v === undefined) recomputed.set(value, (v = recompute()));
    return v;
  };
  return rule({ g, node, dy, wants, x: (i) => read(node.inputs[i]), y: (k) => read(node.outputs[k]) });
}
