/**
 * Builds the sessions of one run over a frozen backbone, and decides how the frozen backbone linears reach them:
 * one place for the order train, classify, eval and the benchmark share (it bounds the process's memory).
 *
 * - int8 (`--quantize int8`): every frozen linear is quantised once, up front, and all graphs of the build share the
 *   copies; for an owned backbone the float32 weights are dropped before any graph is compiled (models/quantize.ts).
 * - float32: the input-gradient Gemms of a training graph (dX = dY·W) read a prepacked initializer twin of each
 *   frozen linear: one more copy of the linears, in the session's memory (340 MB on roberta-base). Measured on 2
 *   threads (Xeon, AVX-512 VNNI), roberta-base SPARTAN, dropout 0.1 (`node --import tsx scripts/bench.ts --phase
 *   train`): a 32×128 step 7.45 → 6.22 s and 16×128 3.67 → 3.08 s, peak RSS 986 → 1298 MB. Packing W on the fly
 *   costs that GEMM (B = W, not transposed) far more than the forward one (B = Wᵀ): prepacking the forward Gemms
 *   too (another 340 MB) gained under 3 %. Inference sessions read the inputs: prepacked forward weights made
 *   roberta-base inference about 5 % faster (2.72 → 2.54 s at 32×128), but the session holds the packed copy while
 *   the engine still holds the float32 one, and a classify-like process peaked at 957 MB instead of 637.
 * - Each session is built from its graph, then the graph (its bytes and external data) is let go, and in int8 a
 *   full GC follows (runtime/reclaim.ts).
 */
import { GraphOptions } from '../models/robertaGraph';
import { int8LinearWeights, int8WeightLevels, quantizeAndDropSources, QuantizeMode } from '../models/quantize';
import { RobertaConfig, TensorMap } from '../types';
import { CompiledGraph } from './compile';
import { reclaimGarbage } from './reclaim';
import { GraphSession } from './session';

/** What the graphs of one build add to their GraphOptions for the frozen linears. */
export type FrozenLinears = Pick<GraphOptions, 'int8' | 'prepacked'>;

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
  /** Tensors a training graph trains: never frozen, so never prepacked. */
  trainable: string[];
  /**
   * The caller owns the backbone and builds nothing else on it (`spartan train`, classify, eval; not serve, which
   * shares one between models): in int8, the float32 copies of the quantised linears are dropped.
   */
  ownsBackbone: boolean;
  threads: number;
  /** The graphs to build, by name; absent ones are skipped. */
  graphs: Partial<Record<K, GraphSpec>>;
}

export async function buildSessions<K extends string>(b: SessionBuild<K>): Promise<Partial<Record<K, GraphSession>>> {
  const specs = (Object.entries(b.graphs) as [K, GraphSpec | undefined][]).filter((e): e is [K, GraphSpec] => e[1] !== undefined);
  const training = specs.some(([, s]) => s.trainingSeed !== undefined);
  let frozen: FrozenLinears;
  if (b.quantize === 'int8') {
    const levels = int8WeightLevels();
    const copies = b.ownsBackbone ? quantizeAndDropSources(b.config, levels, training, b.params, ...b.sources) : undefined;
    frozen = { int8: { weights: b.params, levels, ...(copies ? { copies } : {}) } };
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
