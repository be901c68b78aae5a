/**
 * The int8 backbone (`--quantize int8`, opt-in): which frozen linears run through ONNX Runtime's int8 GEMM, and
 * how their weights are quantised.
 *
 * Which: the six dense layers of every transformer layer (query, key, value, attention output, intermediate,
 * output), and only while frozen. Embeddings, LayerNorms, the memory, the head and every trained tensor stay
 * float32, and so do the gradients of trained tensors.
 *
 * Weights: symmetric int8, per output channel, quantised in JS once per session build (when the graph is
 * compiled, or once up front for a caller that owns the backbone, `quantizeAndDropSources`; the copies then live
 * only inside the ONNX Runtime sessions that prepacked them):
 * for W [out, in] (PyTorch layout), scale[n] = max_k |W[n, k]| / L and q[k, n] = round(W[n, k] / scale[n]) in
 * [−L, L], stored [in, out] — the B of `DynamicQuantizeMatMul` (y = x·B̃ + bias) — as a graph initializer, which
 * ONNX Runtime prepacks for MLAS's u8×s8 GEMM. The activations are quantised by the op itself at every run
 * (per tensor, asymmetric uint8, from their min and max).
 *
 * Input gradients (training): dX = dY·W needs B = W [out, in], a second int8 copy, quantised per *input* channel
 * (scale[k] = max_n |W[n, k]| / L) so that the kernel's per-column scale applies it at no cost. It is made only
 * for the linears whose input needs a gradient (graph.ts `transposedInt8`). Cost: one byte per weight per copy,
 * 85 MB per copy for roberta-base's 72 linears (84.9 M weights; their float32 copy is 340 MB). dY itself is scaled
 * row by row before the op quantises it per tensor (the gradient rule in autodiff/derivatives.ts says why).
 *
 * Range: q in [−L, L]. Where the CPU has VNNI (AVX512-VNNI, AVX-VNNI, AMX) or is ARM, L = 127: the u8×s8 kernel
 * accumulates in int32. On x86 without VNNI, MLAS's u8×s8 kernel (vpmaddubsw) adds pairs of u8·s8 products in int16
 * and saturates above 32767 (probed: 32.4 instead of 64), so there L = 63 (onnxruntime's `reduce_range`): a pair is
 * at most 2·255·63 = 32130, exact. The alternative, q + 128 stored as uint8 for MLAS's u8×u8 kernel (int32, 8 bits),
 * was measured on an AVX2 EPYC (no AVX-512) at 2048×768×3072, 2 threads: u8×u8 128 GFLOP/s, fp32 prepacked 133,
 * u8×s8 181 — the u8×u8 kernel gained nothing over float32, so 7-bit weights it is. test/int8.test.ts checks that
 * the chosen range does not saturate on the CPU that runs the tests.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { RobertaConfig, TensorMap } from '../types';

export const QUANTIZE_MODES = ['none', 'int8'] as const;
export type QuantizeMode = (typeof QUANTIZE_MODES)[number];

/** The weights' range where the int8 kernel accumulates in int32: q in [−127, 127]. */
export const INT8_LEVELS = 127;
/** The range on x86 without VNNI, where pairs of products are summed in int16 (see the module comment). */
export const INT8_LEVELS_NO_VNNI = 63;

/** What a graph needs to build its int8 linears: the float32 weights to quantise and their range. */
export interface Int8Options {
  /** The float32 weights; an int8 linear found in `copies` is not read here (its float32 copy may be gone). */
  weights: TensorMap;
  /** q in [−levels, levels]: `int8WeightLevels()` for this CPU. */
  levels: number;
  /** Copies quantised before the graphs are compiled (`quantizeAndDropSources`), shared by the graphs of one build. */
  copies?: Int8Copies;
}

/** The int8 copies of one linear's weight, α = 1: for the forward pass and, where training needs it, dX. */
export interface Int8Copy {
  forward: QuantizedMatrix;
  inputGradient?: QuantizedMatrix;
}

/** Int8 copies by weight name (canonical `….weight`). */
export type Int8Copies = Map<string, Int8Copy>;

/** The frozen dense layers of transformer layer i that run int8 (tensor prefixes; weight = prefix + '.weight'). */
export function int8LinearPrefixes(layer: number): string[] {
  const p = `roberta.encoder.layer.${layer}`;
  return [
    `${p}.attention.self.query`,
    `${p}.attention.self.key`,
    `${p}.attention.self.value`,
    `${p}.attention.output.dense`,
    `${p}.intermediate.dense`,
    `${p}.output.dense`,
  ];
}

/** The weight names of every layer's frozen dense layers (`int8LinearPrefixes`), layer by layer. */
export function int8LinearWeights(config: RobertaConfig): string[] {
  return Array.from({ length: config.numLayers }, (_, i) => int8LinearPrefixes(i).map((p) => `${p}.weight`)).flat();
}

const INT8_LINEAR = /^roberta\.encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense|intermediate\.dense|output\.dense)$/;

/** Whether a linear (by tensor prefix) is one of the backbone's int8 linears. */
export function isInt8Linear(prefix: string): boolean {
  return INT8_LINEAR.test(prefix);
}

let cachedLevels: number | undefined;

/** The weights' range on this CPU: 127 with VNNI or on ARM, 63 on x86 without VNNI (see the module comment). */
export function int8WeightLevels(): number {
  cachedLevels ??= cpuHasVnni() ? INT8_LEVELS : INT8_LEVELS_NO_VNNI;
  return cachedLevels;
}

function cpuHasVnni(): boolean {
  if (os.arch() === 'arm64') return true; // sdot/udot and i8mm accumulate in int32: no saturation
  if (os.platform() !== 'linux') return false; // no portable flag query: the safe range
  try {
    const flags = fs.readFileSync('/proc/cpuinfo', 'utf8');
    return /\b(avx512_vnni|avx_vnni|amx_int8)\b/.test(flags);
  } catch {
    return false;
  }
}

export interface QuantizedMatrix {
  /** Row-major int8 values of the [rows, cols] matrix a DynamicQuantizeMatMul takes as B. */
  data: Int8Array;
  rows: number;
  cols: number;
  /** Per-column scale: B̃[r, c] = data[r, c]·scale[c]. */
  scale: Float32Array;
}

/**
 * B = Wᵀ [in, out] quantised per column (= per output channel of W [out, in]): the forward pass's y = x·B̃.
 * A scaled product (Gemm's alpha) is `scaledBy` of it.
 */
export function quantizeForward(w: Float32Array, out: number, inp: number, levels = INT8_LEVELS): QuantizedMatrix {
  const data = new Int8Array(inp * out);
  const scale = new Float32Array(out);
  for (let n = 0; n < out; n++) {
    const row = n * inp;
    let max = 0;
    for (let k = 0; k < inp; k++) max = Math.max(max, Math.abs(w[row + k]));
    const s = max > 0 ? max / levels : 1;
    for (let k = 0; k < inp; k++) data[k * out + n] = Math.round(w[row + k] / s);
    scale[n] = s;
  }
  return { data, rows: inp, cols: out, scale };
}

/**
 * B = W [out, in] itself quantised per column (= per input channel of W): the input gradient's dX = dY·W (α·dY·W:
 * `scaledBy`).
 */
export function quantizeForInputGradient(w: Float32Array, out: number, inp: number, levels = INT8_LEVELS): QuantizedMatrix {
  const max = new Float32Array(inp);
  for (let n = 0; n < out; n++) {
    const row = n * inp;
    for (let k = 0; k < inp; k++) max[k] = Math.max(max[k], Math.abs(w[row + k]));
  }
  const step = new Float64Array(inp);
  const scale = new Float32Array(inp);
  for (let k = 0; k < inp; k++) {
    step[k] = max[k] > 0 ? max[k] / levels : 1;
    scale[k] = step[k];
  }
  const data = new Int8Array(out * inp);
  for (let n = 0; n < out; n++) {
    const row = n * inp;
    for (let k = 0; k < inp; k++) data[row + k] = Math.round(w[row + k] / step[k]);
  }
  return { data, rows: out, cols: inp, scale };
}

/** `q` with its product scaled by α (folded into the per-column scales, as Gemm's alpha). */
export function scaledBy(q: QuantizedMatrix, alpha: number): QuantizedMatrix {
  return alpha === 1 ? q : { ...q, scale: q.scale.map((s) => s * alpha) };
}

/**
 * The int8 copies of the linear `name` for a graph: those in `opts.copies`, else quantised now from `opts.weights`
 * (the input-gradient copy only when the gradient rule asks for it).
 */
export function int8CopyOf(name: string, opts: Int8Options): { forward: QuantizedMatrix; inputGradient: () => QuantizedMatrix } {
  const made = opts.copies?.get(name);
  const w = opts.weights.get(name);
  if (!made && !w) throw new Error(`model graph: no weights for the int8 linear ${name}`);
  const [out, inp] = w ? w.shape : [made!.forward.cols, made!.forward.rows];
  return {
    forward: made?.forward ?? quantizeForward(w!.data, out, inp, opts.levels),
    inputGradient: () => {
      const q = made?.inputGradient ?? (w ? quantizeForInputGradient(w.data, out, inp, opts.levels) : undefined);
      if (!q) throw new Error(`model graph: ${name} has no input-gradient int8 copy and its float32 weights are gone`);
      return q;
    },
  };
}

/**
 * For a caller that owns its backbone: quantises every int8 linear of `weights` now (with the input-gradient copy
 * when `inputGradients`, i.e. when a training graph will be built), then drops their float32 weights from `maps`
 * (`dropInt8SourceWeights`). Graphs compiled with `{ copies }` never read those float32 weights, so the process never
 * holds them next to the int8 copies and the compiled graphs (the peak RSS of an int8 run: a classify-like process
 * on roberta-base, `scripts/bench.ts --phase infer-memory --precision int8`, went from 997 to 686 MB). The caller
 * clears the map once its graphs are compiled.
 */
export function quantizeAndDropSources(
  config: RobertaConfig,
  levels: number,
  inputGradients: boolean,
  weights: TensorMap,
  ...maps: TensorMap[]
): Int8Copies {
  const copies: Int8Copies = new Map();
  for (const name of int8LinearWeights(config)) {
    const w = weights.get(name);
    if (!w) continue; // a backbone without this linear: the graph builder reports it, if a graph needs it
    const [out, inp] = w.shape;
    copies.set(name, {
      forward: quantizeForward(w.data, out, inp, levels),
      ...(inputGradients ? { inputGradient: quantizeForInputGradient(w.data, out, inp, levels) } : {}),
    });
  }
  dropInt8SourceWeights(config, weights, ...maps);
  return copies;
}

/**
 * Drops the float32 weights of the int8 linears from `maps` (a backbone's weights, a parameter map layered on it)
 * once their int8 copies exist (`quantizeAndDropSources`): the process then holds those weights only as int8 (340 MB
 * less on roberta-base). Only for a caller that owns the backbone and builds no other graph from its float32 linears
 * (`spartan train`, classify, eval); `serve` shares one backbone between models and keeps them.
 * Returns the number of float32 values dropped.
 */
export function dropInt8SourceWeights(config: RobertaConfig, ...maps: TensorMap[]): number {
  let dropped = 0;
  for (const name of int8LinearWeights(config)) {
    let size = 0;
    for (const m of maps) {
      size = m.get(name)?.data.length ?? size;
      m.delete(name);
    }
    dropped += size;
  }
  return dropped;
}
