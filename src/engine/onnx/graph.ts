/**
 * A small intermediate representation of an ONNX graph, built in TypeScript.
 *
 * Why not build ModelProto objects directly: the reverse-mode differentiator needs, for every value, its element
 * type and a symbolic shape (to know which axes a broadcast gradient must be summed over), and it needs to look up
 * the node that produced a value. This IR keeps that bookkeeping; `serialize.ts` turns it into ONNX bytes.
 *
 * Dimensions are numbers (static) or strings (symbolic, e.g. 'B', 'T', 'N' = B·T). Two equal strings are the same
 * size; the runtime shapes are whatever the inputs say.
 */

export type Dim = number | string;
export type Shape = Dim[];
export type ElemType = 'float32' | 'int64' | 'bool' | 'int8' | 'uint8';

/**
 * A plain number is an INT attribute; `{ tensorFloat }` a one-element float tensor (ConstantOfShape's value);
 * `{ graph }` a subgraph (an If's branches).
 */
export type AttrValue =
  number | number[] | string | { float: number } | { floats: number[] } | { tensorFloat: number } | { graph: Subgraph };

/**
 * A branch of a control-flow node: its nodes and outputs. It reads the values of the graph around it (inputs,
 * initializers, node outputs) by name, as ONNX subgraphs do, and has no inputs or initializers of its own.
 */
export interface Subgraph {
  name: string;
  nodes: Node[];
  outputs: ValueInfo[];
}

export interface Node {
  op: string;
  inputs: string[];
  outputs: string[];
  attrs: Record<string, AttrValue>;
}

/** A node's float attribute (`{ float }`), or `fallback` where it has none. */
export function floatAttr(node: Node, name: string, fallback: number): number {
  const a = node.attrs[name];
  return typeof a === 'object' && !Array.isArray(a) && 'float' in a ? a.float : fallback;
}

export interface ValueInfo {
  name: string;
  type: ElemType;
  shape: Shape;
}

export interface Constant extends ValueInfo {
  /** The values; empty for a constant that ONNX Runtime reads from a file (`file`). */
  data: Float32Array | BigInt64Array | Uint8Array | Int8Array;
  /** Where ONNX Runtime reads the values itself (ONNX external data), so that the engine never holds them. */
  file?: FileData;
}

/**
 * A tensor's bytes in a file, stored as the constant's type expects (little-endian, row-major): e.g. a float32
 * weight inside the backbone's model.safetensors. `stamp` is the file as it was when the offsets were read; a
 * session refuses a file that no longer matches it (runtime/session.ts).
 */
export interface FileData {
  path: string;
  offset: number;
  length: number;
  stamp: FileStamp;
}

/** What identifies one version of a file cheaply: a rewrite changes its mtime (and usually its size or inode). */
export interface FileStamp {
  size: number;
  mtimeMs: number;
  ino: number;
}

/** ONNX opset the generated graphs target: 20 has Gelu and LayerNormalization as standard ops. */
export const OPSET = 20;

/** ONNX Runtime's contrib-op domain, and the ops of it the graphs use (serialize.ts imports it only when used). */
export const MS_DOMAIN = 'com.microsoft';
export const MS_DOMAIN_OPS = new Set(['DynamicQuantizeMatMul']);

/**
 * The int8 copy of a frozen weight laid out for the input gradient (dX = dY·W): its initializer and per-column
 * scales, made on demand by the graph builder so that a graph that never needs that gradient never holds it.
 */
export type TransposedInt8 = () => { weight: string; scale: string };

/**
 * A short forward chain whose gradient one rule of `CHAIN_DERIVATIVES` (autodiff/derivatives.ts) computes in fewer
 * passes than its nodes' own rules applied one by one. Keyed by the chain's output; the backward pass applies the
 * rule when it reaches the node that produced that output, and the chain's inner nodes then get no gradient.
 */
export interface Chain {
  /** The rule's name in CHAIN_DERIVATIVES. */
  rule: 'SoftmaxDropout';
  /** The chain's input, which receives the gradient. */
  input: string;
  /** Values inside the chain: each must have one consumer, the chain's next node (checked by the backward pass). */
  inner: string[];
  /** The forward values the rule reads, by the rule's own names. */
  reads: Record<string, string>;
}

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  readonly constants: Constant[] = [];
  /** Type and shape of every value, by name. */
  readonly values = new Map<string, ValueInfo>();
  /** The node that produced each value (absent for inputs and constants). */
  readonly producer = new Map<string, Node>();
  private counter = 0;
  private constCache = new Map<string, string>();
  /**
   * Values a gradient rule should recompute rather than keep alive from the forward pass (e.g. a dropout output:
   * its input, which other rules keep anyway, plus a one-byte mask cost a quarter of a float copy).
   */
  readonly recompute = new Map<string, () => string>();
  /**
   * For each int8 weight of a `DynamicQuantizeMatMul` (by initializer name), how to get its transposed int8 copy:
   * what the gradient rule of that op multiplies dY by.
   */
  readonly transposedInt8 = new Map<string, TransposedInt8>();
  /**
   * For a frozen float32 weight that the forward Gemms read as an input: how to get the initializer (the same values)
   * that the input-gradient Gemm reads instead, which ONNX Runtime prepacks for it (models/robertaGraph.ts `prepacked`).
   */
  readonly inputGradientOperand = new Map<string, () => string>();
  /** Chains whose gradient one rule computes (see `Chain`), by output value. */
  readonly chains = new Map<string, Chain>();
  /** Runtime values of symbolic dimensions: symbol → 1-D int64 tensor of length 1. */
  private readonly symbols = new Map<string, string>();

  /** A fresh value name with a readable prefix. */
  fresh(prefix: string): string {
    return `${prefix}__${this.counter++}`;
  }

  info(name: string): ValueInfo {
    const v = this.values.get(name);
    if (!v) throw new Error(`graph: unknown value ${name}`);
    return v;
  }

  shape(name: string): Shape {
    return this.info(name).shape;
  }

  input(name: string, type: ElemType, shape: Shape): string {
    if (this.values.has(name)) throw new Error(`graph: duplicate value ${name}`);
    const v = { name, type, shape };
    this.inputs.push(v);
    this.values.set(name, v);
    return name;
  }

  /** Turns an input into an initializer holding `data` (for self-contained exported models). */
  bindInput(name: string, data: Float32Array): void {
    const i = this.inputs.findIndex((v) => v.name === name);
    if (i < 0) throw new Error(`graph: ${name} is not an input`);
    const [v] = this.inputs.splice(i, 1);
    const c: Constant = { ...v, data };
    this.constants.push(c);
    this.values.set(name, c);
  }

  /** A named constant (an initializer of the session): e.g. an int8 weight, which ONNX Runtime then prepacks. */
  initializer(name: string, type: ElemType, shape: number[], data: Constant['data']): string {
    if (this.values.has(name)) throw new Error(`graph: duplicate value ${name}`);
    const c: Constant = { name, type, shape, data };
    this.constants.push(c);
    this.values.set(name, c);
    return name;
  }

  /** Removes a constant no node reads any more (ONNX Runtime warns about unused initializers), and its cache entry. */
  removeConstant(name: string): void {
    const i = this.constants.findIndex((c) => c.name === name);
    if (i < 0) throw new Error(`graph: ${name} is not a constant`);
    this.constants.splice(i, 1);
    this.values.delete(name);
    for (const [key, v] of this.constCache) if (v === name) this.constCache.delete(key);
  }

  /** A named constant whose values ONNX Runtime reads from `file` (the engine holds none of them). */
  fileInitializer(name: string, type: ElemType, shape: number[], file: FileData): string {
    if (this.values.has(name)) throw new Error(`graph: duplicate value ${name}`);
    const bytes = shape.reduce((a, b) => a * b, 1) * ELEM_BYTES[type];
    if (bytes !== file.length)
      throw new Error(`graph: ${name} [${shape.join(', ')}] needs ${bytes} bytes, its file region has ${file.length}`);
    const c: Constant = { name, type, shape, data: new Float32Array(0), file };
    this.constants.push(c);
    this.values.set(name, c);
    return name;
  }

  /** Declares where the runtime size of a symbolic dimension can be read (a 1-element int64 tensor). */
  defineSymbol(symbol: string, value: string): void {
    this.symbols.set(symbol, value);
  }

  /**
   * A runtime shape tensor for `x`'s shape. Built from the symbols' values when every dimension is known, so that
   * no Shape node reads `x` itself: a gradient rule that reshapes back to x's shape would otherwise keep x alive
   * until the backward pass reaches it — a whole activation held for nothing.
   */
  shapeTensor(x: string): string {
    const shape = this.shape(x);
    if (shape.length === 0 || !shape.every((d) => typeof d === 'number' || this.symbols.has(d))) return this.shapeOf(x);
    const key = `shape:${shape.join(',')}`;
    const cached = this.constCache.get(key);
    if (cached) return cached;
    const pieces = shape.map((d) => (typeof d === 'number' ? this.constI([d]) : this.symbols.get(d)!));
    const out = this.concat(pieces, 0, [shape.length]);
    this.constCache.set(key, out);
    return out;
  }

  output(name: string): void {
    this.outputs.push(this.info(name));
  }

  /** Adds a node; `outs` gives the type and shape of each output (prefix names are made unique). */
  node(
    op: string,
    inputs: string[],
    outs: { prefix?: string; name?: string; type: ElemType; shape: Shape }[],
    attrs: Record<string, AttrValue> = {},
  ): string[] {
    const outputs = outs.map((o) => o.name ?? this.fresh(o.prefix ?? op.toLowerCase()));
    const n: Node = { op, inputs, outputs, attrs };
    this.nodes.push(n);
    outs.forEach((o, i) => {
      if (this.values.has(outputs[i])) throw new Error(`graph: duplicate value ${outputs[i]}`);
      const v = { name: outputs[i], type: o.type, shape: o.shape };
      this.values.set(outputs[i], v);
      this.producer.set(outputs[i], n);
    });
    return outputs;
  }

  // ---------------------------------------------------------------- constants

  private constant(type: ElemType, shape: Shape, data: Constant['data'], key: string): string {
    const cached = this.constCache.get(key);
    if (cached) return cached;
    const name = this.fresh('const');
    const c = { name, type, shape, data };
    this.constants.push(c);
    this.values.set(name, c);
    this.constCache.set(key, name);
    return name;
  }

  /** A float32 constant; a number gives a scalar. */
  constF(values: number | number[], shape?: number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    const s = shape ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.constant('float32', s, Float32Array.from(arr), `f:${s.join(',')}:${arr.join(',')}`);
  }

  /** An int64 constant (shapes, axes, indices); a number gives a scalar. */
  constI(values: number | number[], shape?: number[]): string {
    const arr = typeof values === 'number' ? [values] : values;
    const s = shape ?? (typeof values === 'number' ? [] : [arr.length]);
    return this.constant('int64', s, BigInt64Array.from(arr.map(BigInt)), `i:${s.join(',')}:${arr.join(',')}`);
  }

  // ---------------------------------------------------------------- ops with shape inference

  private unary(op: string, x: string, attrs: Record<string, AttrValue> = {}, prefix?: string): string {
    const v = this.info(x);
    return this.node(op, [x], [{ prefix, type: v.type, shape: v.shape }], attrs)[0];
  }

  private binary(op: string, a: string, b: string, type?: ElemType, prefix?: string): string {
    const shape = broadcastShapes(this.shape(a), this.shape(b));
    return this.node(op, [a, b], [{ prefix, type: type ?? this.info(a).type, shape }])[0];
  }

  add(a: string, b: string, prefix?: string) {
    return this.binary('Add', a, b, undefined, prefix);
  }
  sub(a: string, b: string, prefix?: string) {
    return this.binary('Sub', a, b, undefined, prefix);
  }
  mul(a: string, b: string, prefix?: string) {
    return this.binary('Mul', a, b, undefined, prefix);
  }
  div(a: string, b: string, prefix?: string) {
    return this.binary('Div', a, b, undefined, prefix);
  }
  greaterOrEqual(a: string, b: string) {
    return this.binary('GreaterOrEqual', a, b, 'bool');
  }
  greater(a: string, b: string) {
    return this.binary('Greater', a, b, 'bool');
  }
  neg(x: string) {
    return this.unary('Neg', x);
  }
  abs(x: string) {
    return this.unary('Abs', x);
  }
  reciprocal(x: string) {
    return this.unary('Reciprocal', x);
  }
  exp(x: string) {
    return this.unary('Exp', x);
  }
  erf(x: string) {
    return this.unary('Erf', x);
  }
  tanh(x: string, prefix?: string) {
    return this.unary('Tanh', x, {}, prefix);
  }
  relu(x: string, prefix?: string) {
    return this.unary('Relu', x, {}, prefix);
  }
  sigmoid(x: string, prefix?: string) {
    return this.unary('Sigmoid', x, {}, prefix);
  }
  identity(x: string, prefix?: string) {
    return this.unary('Identity', x, {}, prefix);
  }
  gelu(x: string, prefix?: string) {
    return this.unary('Gelu', x, { approximate: 'none' }, prefix);
  }
  softmax(x: string, axis = -1, prefix?: string) {
    return this.unary('Softmax', x, { axis }, prefix);
  }
  logSoftmax(x: string, axis = -1) {
    return this.unary('LogSoftmax', x, { axis });
  }

  cast(x: string, to: ElemType): string {
    return this.node('Cast', [x], [{ type: to, shape: this.shape(x) }], { to: ONNX_ELEM_TYPE[to] })[0];
  }

  where(cond: string, a: string, b: string): string {
    const shape = broadcastShapes(broadcastShapes(this.shape(cond), this.shape(a)), this.shape(b));
    return this.node('Where', [cond, a, b], [{ type: this.info(a).type, shape }])[0];
  }

  matmul(a: string, b: string, prefix?: string): string {
    return this.node('MatMul', [a, b], [{ prefix, type: 'float32', shape: matmulShape(this.shape(a), this.shape(b)) }])[0];
  }

  /** Gemm: alpha·A'·B' + C (2-D), with A' = Aᵀ if transA, B' = Bᵀ if transB. */
  gemm(
    a: string,
    b: string,
    c: string | undefined,
    opts: { transA?: boolean; transB?: boolean; alpha?: number } = {},
    prefix?: string,
  ): string {
    const sa = this.shape(a),
      sb = this.shape(b);
    const m = opts.transA ? sa[1] : sa[0];
    const n = opts.transB ? sb[0] : sb[1];
    const attrs: Record<string, AttrValue> = {};
    if (opts.transA) attrs.transA = 1;
    if (opts.transB) attrs.transB = 1;
    if (opts.alpha !== undefined && opts.alpha !== 1) attrs.alpha = { float: opts.alpha };
    return this.node('Gemm', c ? [a, b, c] : [a, b], [{ prefix, type: 'float32', shape: [m, n] }], attrs)[0];
  }

  /**
   * com.microsoft DynamicQuantizeMatMul: y = a·B̃ (+ bias), B̃[k, n] = b[k, n]·bScale[n], with `b` an int8
   * initializer [K, N], prepacked by ONNX Runtime, and `a` quantised to uint8 per tensor at run time (MLAS u8×s8
   * GEMM). No zero point: the weights are quantised symmetrically.
   */
  dynamicQuantizeMatMul(a: string, b: string, bScale: string, bias?: string, prefix?: string): string {
    const sa = this.shape(a),
      sb = this.shape(b);
    // Inputs: A, B, b_scale, b_zero_point (empty: symmetric), bias.
    const inputs = [a, b, bScale, ...(bias ? ['', bias] : [])];
    return this.node('DynamicQuantizeMatMul', inputs, [{ prefix, type: 'float32', shape: [...sa.slice(0, -1), sb[1]] }])[0];
  }

  transpose(x: string, perm: number[]): string {
    const s = this.shape(x);
    return this.node('Transpose', [x], [{ type: this.info(x).type, shape: perm.map((p) => s[p]) }], { perm })[0];
  }

  /** Reshape to a runtime shape tensor (`shapeValue`), annotated with the symbolic `shape`. */
  reshape(x: string, shapeValue: string, shape: Shape, prefix?: string): string {
    return this.node('Reshape', [x, shapeValue], [{ prefix, type: this.info(x).type, shape }])[0];
  }

  /** Reshape to a shape known when the graph is built (0 and -1 as in ONNX). */
  reshapeTo(x: string, target: number[], shape: Shape, prefix?: string): string {
    return this.reshape(x, this.constI(target), shape, prefix);
  }

  reduceSum(x: string, axes: number[], keepdims: boolean): string {
    return this.reduce('ReduceSum', x, axes, keepdims);
  }

  reduceMean(x: string, axes: number[], keepdims: boolean): string {
    return this.reduce('ReduceMean', x, axes, keepdims);
  }

  reduceMax(x: string, axes: number[], keepdims: boolean): string {
    return this.reduce('ReduceMax', x, axes, keepdims);
  }

  reduceMin(x: string, axes: number[], keepdims: boolean): string {
    return this.reduce('ReduceMin', x, axes, keepdims);
  }

  /** Elementwise maximum of one or more tensors (broadcast). */
  max(xs: string[]): string {
    const shape = xs.map((x) => this.shape(x)).reduce((a, b) => broadcastShapes(a, b));
    return this.node('Max', xs, [{ type: this.info(xs[0]).type, shape }])[0];
  }

  private reduce(op: string, x: string, axes: number[], keepdims: boolean): string {
    const s = this.shape(x);
    const norm = axes.map((a) => (a < 0 ? a + s.length : a));
    const shape = keepdims ? s.map((d, i) => (norm.includes(i) ? 1 : d)) : s.filter((_, i) => !norm.includes(i));
    return this.node(op, [x, this.constI(axes)], [{ type: this.info(x).type, shape }], { keepdims: keepdims ? 1 : 0 })[0];
  }

  unsqueeze(x: string, axes: number[]): string {
    const s = [...this.shape(x)];
    for (const a of [...axes].sort((p, q) => p - q)) s.splice(a < 0 ? s.length + 1 + a : a, 0, 1);
    return this.node('Unsqueeze', [x, this.constI(axes)], [{ type: this.info(x).type, shape: s }])[0];
  }

  gather(data: string, indices: string, axis = 0, prefix?: string): string {
    const sd = this.shape(data),
      si = this.shape(indices);
    const shape = [...sd.slice(0, axis), ...si, ...sd.slice(axis + 1)];
    return this.node('Gather', [data, indices], [{ prefix, type: this.info(data).type, shape }], { axis })[0];
  }

  /** Slice with constant starts/ends on the given axes (steps 1). */
  slice(x: string, starts: number[], ends: number[], axes: number[], shape: Shape): string {
    return this.node('Slice', [x, this.constI(starts), this.constI(ends), this.constI(axes)], [{ type: this.info(x).type, shape }])[0];
  }

  shapeOf(x: string): string {
    return this.node('Shape', [x], [{ type: 'int64', shape: [this.shape(x).length] }])[0];
  }

  concat(xs: string[], axis: number, shape: Shape): string {
    return this.node('Concat', xs, [{ type: this.info(xs[0]).type, shape }], { axis })[0];
  }

  expand(x: string, shapeValue: string, shape: Shape): string {
    return this.node('Expand', [x, shapeValue], [{ type: this.info(x).type, shape }])[0];
  }

  topK(x: string, k: number): [string, string] {
    const s = this.shape(x);
    const out = [...s.slice(0, -1), k];
    const [values, indices] = this.node(
      'TopK',
      [x, this.constI([k])],
      [
        { type: 'float32', shape: out },
        { type: 'int64', shape: out },
      ],
      { axis: -1, largest: 1, sorted: 1 },
    );
    return [values, indices];
  }

  /** LayerNormalization over the last axis; also returns Mean and InvStdDev, which the backward pass reuses. */
  layerNorm(x: string, scale: string, bias: string, epsilon: number, prefix?: string): string {
    const s = this.shape(x);
    const stat = [...s.slice(0, -1), 1];
    const [y] = this.node(
      'LayerNormalization',
      [x, scale, bias],
      [
        { prefix, type: 'float32', shape: s },
        { prefix: 'ln_mean', type: 'float32', shape: stat },
        { prefix: 'ln_invstd', type: 'float32', shape: stat },
      ],
      { axis: -1, epsilon: { float: epsilon } },
    );
    return y;
  }

  pad(x: string, pads: string, shape: Shape): string {
    return this.node('Pad', [x, pads], [{ type: this.info(x).type, shape }])[0];
  }

  /**
   * x₁ + … + xₙ of one shape. Tensors are added by a chain of Adds: ONNX Runtime's Sum of three or more takes about
   * twice as long (2 threads, [512, 768]: four inputs 500 against 225 µs, three 340 against 165; the backward pass
   * sums a layer input's four gradients and the memory input's three). Scalars go to one Sum node, not a chain.
   */
  sum(xs: string[]): string {
    if (xs.length === 1) return xs[0];
    const shape = this.shape(xs[0]);
    if (!xs.every((x) => this.shape(x).join() === shape.join()))
      throw new Error(`graph: sum of different shapes (${xs.map((x) => `[${this.shape(x).join(', ')}]`).join(', ')})`);
    if (xs.length === 2 || shape.length > 0) return xs.slice(1).reduce((acc, x) => this.add(acc, x), xs[0]);
    return this.node('Sum', xs, [{ type: 'float32', shape }])[0];
  }
}

export const ONNX_ELEM_TYPE: Record<ElemType, number> = { float32: 1, uint8: 2, int8: 3, int64: 7, bool: 9 };
/** Bytes per element of each type. */
export const ELEM_BYTES: Record<ElemType, number> = { float32: 4, uint8: 1, int8: 1, int64: 8, bool: 1 };

/** Numpy broadcasting of two symbolic shapes. */
export function broadcastShapes(a: Shape, b: Shape): Shape {
  const n = Math.max(a.length, b.length);
  const out: Shape = [];
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da === 1) out.push(db);
    else if (db === 1 || da === db) out.push(da);
    else if (typeof da === 'string' || typeof db === 'string') out.push(typeof da === 'number' ? da : db);
    else throw new Error(`graph: cannot broadcast [${a}] with [${b}]`);
  }
  return out;
}

function matmulShape(a: Shape, b: Shape): Shape {
  if (a.length < 2 || b.length < 2) throw new Error('graph: MatMul operands need rank ≥ 2');
  const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
  return [...batch, a[a.length - 2], b[b.length - 1]];
}

/**
 * Axes along which a value of shape `from` was broadcast to `to`: `leading` axes that `from` lacks (summed and
 * dropped) and `kept` axes where `from` has 1 (summed, kept with size 1).
 */
export function broadcastAxes(from: Shape, to: Shape): { leading: number[]; kept: number[] } {
  const offset = to.length - from.length;
  const leading = Array.from({ length: offset }, (_, i) => i);
  const kept: number[] = [];
  from.forEach((d, i) => {
    if (d === 1 && to[i + offset] !== 1) kept.push(i + offset);
  });
  return { leading, kept };
}
