/**
 * The registry of adaptation methods: which tensors each adds to the frozen backbone, where it hooks into the
 * graph, how those tensors start, and which tensors are trained.
 */
import { MethodHooks, headShapes, layerNormNames } from '../models/robertaGraph';
import { MemoryGeometry, RobertaConfig, SpartanError, TensorMap } from '../types';
import { DEFAULT_GEOMETRY, spartanHooks, spartanShapes, validateGeometry } from './spartan';
import { adapterHooks, adapterShapes } from './adapters';

/**
 * `spartan`: the memory after every layer (+ head, + LayerNorms by default). `pfeiffer` / `houlsby`: bottleneck
 * adapters (+ head). `head`: the classification head alone. `full`: every backbone weight too.
 * `none` is never trained: benchmarks use `head`'s graph as the plain backbone.
 */
export type MethodName = 'spartan' | 'pfeiffer' | 'houlsby' | 'head' | 'full';
export const METHODS: MethodName[] = ['spartan', 'pfeiffer', 'houlsby', 'head', 'full'];

export interface MethodSpec {
  name: MethodName;
  geometry: MemoryGeometry;
  /** Train the backbone's LayerNorm parameters too (the authors' code does, for SPARTAN). */
  trainLayerNorms: boolean;
}

/** Shapes of the tensors the method itself adds (not the head). */
export function methodShapes(spec: MethodSpec, config: RobertaConfig): Map<string, number[]> {
  switch (spec.name) {
    case 'spartan': {
      const problem = validateGeometry(spec.geometry);
      if (problem) throw new SpartanError(`SPARTAN memory: ${problem}`);
      return spartanShapes(config, spec.geometry);
    }
    case 'pfeiffer':
    case 'houlsby':
      return adapterShapes(spec.name, config);
    case 'head':
    case 'full':
      return new Map();
  }
}

export function methodHooks(spec: MethodSpec): MethodHooks | undefined {
  switch (spec.name) {
    case 'spartan':
      return spartanHooks(spec.geometry);
    case 'pfeiffer':
    case 'houlsby':
      return adapterHooks(spec.name);
    default:
      return undefined;
  }
}

/**
 * Everything the optimiser updates: method tensors, the head, the backbone's LayerNorms when asked (SPARTAN's
 * default), and for `full` every backbone tensor.
 */
export function trainableNames(spec: MethodSpec, config: RobertaConfig, numLabels: number, backboneNames: Iterable<string> = []): string[] {
  const names = [...methodShapes(spec, config).keys(), ...headShapes(config, numLabels).keys()];
  if (spec.name === 'full') names.push(...backboneNames);
  else if (spec.trainLayerNorms && spec.name !== 'head') names.push(...layerNormNames(config));
  return names;
}

/** Whether a method trains the backbone's LayerNorms unless told otherwise (only SPARTAN, as its authors' code). */
export function defaultTrainLayerNorms(name: MethodName): boolean {
  return name === 'spartan';
}

/**
 * The one way to describe a method: the paper's geometry and the method's LayerNorm default unless given (the CLI's
 * flags, a memory's metadata, the grid's and the benchmarks' settings all go through here).
 */
export function methodSpec(name: MethodName, opts: { geometry?: MemoryGeometry; trainLayerNorms?: boolean } = {}): MethodSpec {
  return { name, geometry: opts.geometry ?? DEFAULT_GEOMETRY, trainLayerNorms: opts.trainLayerNorms ?? defaultTrainLayerNorms(name) };
}

/**
 * Fresh tensors for the method and the head: N(0, 0.02) weights (the authors', Hugging Face's and AdapterHub's
 * initialiser), zero biases. LayerNorm (and, for `full`, backbone) tensors start from the backbone's values.
 */
export function initialTensors(spec: MethodSpec, config: RobertaConfig, numLabels: number, normal: () => number): TensorMap {
  const out: TensorMap = new Map();
  const shapes = new Map([...methodShapes(spec, config), ...headShapes(config, numLabels)]);
  for (const [name, shape] of shapes) {
    const size = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(size);
    if (!name.endsWith('.bias')) for (let i = 0; i < size; i++) data[i] = 0.02 * normal();
    out.set(name, { shape: [...shape], data });
  }
  return out;
}
