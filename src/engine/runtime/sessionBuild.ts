/**
 * Builds the sessions of one run over a frozen backbone, and decides how the frozen backbone linears reach them:
 * one place for the order train, classify, eval and the benchmark share (it bounds the process's memory).
 *
 * - int8 (`--quantize int8`): every frozen linear is quantised once, up front, and all graphs of the build share the
 *   copies; for an owned backbone the float32 weights are dropped before any graph is compiled (models/quantize.ts).
 * - float32, for an owned backbone loaded from a file (train, classify, eval; `Backbone.files` holds where its float32
 *   tensors lie): the frozen linears are initializers that ONNX Runtime reads from model.safetensors itself and
 *   prepacks, for the forward Gemms (B = Wᵀ) and, in a training graph, for the input-gradient Gemms (B = W, packed
 *   apart); the engine drops its float32 copies first and collects them. The trainer evaluates its dev set on the
 *   training session (compile.ts `gradientSwitch`), so a training process holds the linears twice, packed, and
 *   never as float32. Measured on 2 threads (Xeon, AVX-512 VNNI), roberta-base SPARTAN (`node --import tsx
 *   scripts/bench.ts --phase infer|infer-memory|sst2`; SPARTAN_FILE_WEIGHTS=0 for the other form): inference
 *   32×128 2.71 → 2.55 s and 16×128 1.36 → 1.31 s, classify-like peak RSS 636 → 628 MB; SST-2 batches (16 rows of
 *   about 15 tokens, where packing W on every run costs most) 37.9 → 39.8 ex/s against the twins, inputs and a dev
 *   session of its own (commit 2c3bfee). Fed from the engine's own arrays
 *   instead (in-memory external data), a classify-like process peaked at 957 MB: arrays and packed copy side by side.
 * - float32 otherwise (serve's shared backbone, synthetic backbones, float16 files): the forward Gemms read the
 *   parameter inputs, and the input-gradient Gemms of a training graph read a prepacked initializer twin of each
 *   frozen linear, made from the engine's arrays (one more copy, 340 MB on roberta-base). Packing W on the fly
 *   costs that GEMM far more than packing Wᵀ costs the forward one: the twins took a 32×128 step from 7.45 to
 *   6.22 s (`--phase train`).
 * - Each session is built from its graph, then the graph (its bytes and external data) is let go, and in an owned
 *   int8 build a full GC follows (runtime/reclaim.ts).
 */
import { GraphOptions } from '../models/robertaGraph';
import { int8LinearWeights, int8WeightLevels, quantizeAndDropSources, QuantizeMode } from '../models/quantize';
import { RobertaConfig, TensorMap } from '../types';
import type { FileData } from '../onnx/graph';
import { CompiledGraph } from './compile';
import { reclaimGarbage } from './reclaim';
import { GraphSession } from './session';

/** What the graphs of one build add to their GraphOptions for the frozen linears. */
export type FrozenLinears = Pick<GraphOptions, 'int8' | 'prepacked' | 'fromFile'>;

export interface GraphSpec {
  compile: (frozen: FrozenLinears) => CompiledGraph;
  /** Present for a training graph: its dropout masks' seed (an int8 build then makes the input-gradient copies). */
  trainingSeed?: number;
}

export interface SessionBuild<K extends string> {
  config: RobertaConfig;
  quantize: QuantizeMode;
  /** The parameter map the sessions read (the backbone's weights with the trained tensors layered on top). */
  params: TensorMap;
  /** The backbone's own map and any other map layered on it: float32 linears dropped from `params` go from these too. */
  sources: TensorMap[];
  /**
   * Where the backbone's own float32 weights lie in its file (`Backbone.files`), with the map they were loaded
   * into: a linear of `params` that is still the backbone's own tensor can be read by ONNX Runtime from there.
   */
  backbone?: { weights: TensorMap; files?: Map<string, FileData> };
  /** Tensors a training graph trains: never frozen, so never prepacked. */
  trainable: string[];
  /**
   * The caller owns the backbone and builds nothing else on it (`spartan train`, classify, eval; not serve, which
   * shares one between models): its float32 linears are dropped, once quantised (int8) or where ONNX Runtime reads
   * them from the backbone's file (float32).
   */
  ownsBackbone: boolean;
  threads: number;
  /** The graphs to build, by name; absent ones are skipped. */
  graphs: Partial<Record<K, GraphSpec>>;
}

export async function buildSessions<K extends string>(b: SessionBuild<K>): Promise<Partial<Record<K, GraphSession>>> {
  const specs = (Object.entries(b.graphs) as [K, GraphSpec | undefined][]).filter((e): e is [K, GraphSpec] => e[1] !== undefined);
  const training = specs.some(([, s]) => s.trainingSeed !== undefined);
  // Only for an owned backbone: serve's next model reads the same float32 linears as inputs.
  const fromFile = b.quantize !== 'int8' && b.ownsBackbone ? fileBacked(b) : new Map<string, FileData>();
  let frozen: FrozenLinears;
  if (b.quantize === 'int8') {
    const levels = int8WeightLevels();
    const copies = b.ownsBackbone ? quantizeAndDropSources(b.config, levels, training, b.params, ...b.sources) : undefined;
    // The dropped float32 linears, collected before ONNX Runtime takes its copies: left to V8, a classify-like
    // process peaked anywhere between 643 and 785 MB (`bench.ts --phase infer-memory --precision int8`).
    if (copies) reclaimGarbage();
    frozen = { int8: { weights: b.params, levels, ...(copies ? { copies } : {}) } };
  } else if (fromFile.size > 0) {
    for (const m of [b.params, ...b.sources]) for (const name of fromFile.keys()) m.delete(name);
    reclaimGarbage(); // now, before ONNX Runtime reads its own copies (as for int8 above)
    frozen = { fromFile };
  } else {
    const trained = new Set(b.trainable);
    const prepacked: TensorMap = new Map();
    for (const name of int8LinearWeights(b.config)) {
      const w = b.params.get(name);
      if (w && !trained.has(name)) prepacked.set(name, w);
    }
    frozen = { prepacked };
  }
  const graphs: { name: K; spec: GraphSpec; graph?: CompiledGraph }[] = specs.map(([name, spec]) => ({
    name,
    spec,
    graph: spec.compile(frozen),
  }));
  frozen.int8?.copies?.clear(); // the graphs hold them now
  // An int8 graph carries its quantised copies, garbage once its session holds them; the file-backed linears were
  // collected above, before any session was built.
  const reclaim = frozen.int8 !== undefined && b.ownsBackbone;
  const sessions: Partial<Record<K, GraphSession>> = {};
  try {
    for (const g of graphs) {
      sessions[g.name] = await GraphSession.create(g.graph!, { threads: b.threads }, g.spec.trainingSeed);
      g.graph = undefined; // the session holds its own copy of everything the graph carried
      if (reclaim) reclaimGarbage();
    }
  } catch (e) {
    for (const s of Object.values(sessions) as GraphSession[]) await s.release();
    throw e;
  }
  return sessions;
}

/**
 * The frozen float32 linears of `params` that ONNX Runtime can read from the backbone's file: those still the
 * backbone's own tensors (a full fine-tune's memory layers trained ones over them), stored there as float32.
 * SPARTAN_FILE_WEIGHTS=0 turns it off (for measurements: the linears are then inputs, packed at every run, with the
 * prepacked twins for training graphs' input gradients).
 */
function fileBacked(b: SessionBuild<string>): Map<string, FileData> {
  const out = new Map<string, FileData>();
  if (process.env.SPARTAN_FILE_WEIGHTS === '0' || !b.backbone?.files) return out;
  const trained = new Set(b.trainable);
  for (const name of int8LinearWeights(b.config)) {
    const file = b.backbone.files.get(name);
    const w = b.params.get(name);
    if (file && w && !trained.has(name) && w === b.backbone.weights.get(name)) out.set(name, file);
  }
  return out;
}
