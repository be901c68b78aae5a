/**
 * What a memory file's metadata says about its method, checked: the method must be one this version knows, its
 * geometry must be valid, and its tensors must be exactly the ones that method and geometry give on the loaded
 * backbone, with finite values. Checked before a session is built, so a damaged or hand-edited file is refused
 * with a message naming it instead of failing inside ONNX Runtime (or classifying as NaN).
 */
import { DEFAULT_GEOMETRY } from '../methods/spartan';
import { METHODS, MethodName, MethodSpec, methodShapes, methodSpec } from '../methods';
import { headShapes, layerNormNames } from '../models/robertaGraph';
import { MemoryGeometry, RobertaConfig, SpartanError, TaskType, TensorMap } from '../types';
import { checkSequenceLength } from '../limits';
import { QUANTIZE_MODES, QuantizeMode } from '../models/quantize';

interface MethodMetadata {
  method: string;
  task: TaskType;
  labels: string[];
  hyperparameters: Record<string, unknown>;
}

/**
 * The backbone precision a memory was trained with (`hyperparameters.quantize`; `none` for memories saved before
 * it existed): what classify, eval and serve use unless `--quantize` says otherwise.
 */
export function quantizeFromMetadata(meta: { hyperparameters: Record<string, unknown> }, file = 'the memory file'): QuantizeMode {
  const v = meta.hyperparameters.quantize ?? 'none';
  if (typeof v !== 'string' || !(QUANTIZE_MODES as readonly string[]).includes(v))
    throw new SpartanError(`${file}: hyperparameter "quantize" must be one of ${QUANTIZE_MODES.join(', ')}, got ${JSON.stringify(v)}`);
  return v as QuantizeMode;
}

/** The method description stored in a memory's hyper-parameters; `file` names the memory in errors. */
export function methodFromMetadata(meta: MethodMetadata, file = 'the memory file'): MethodSpec {
  if (!(METHODS as string[]).includes(meta.method)) {
    throw new SpartanError(`${file}: metadata method is ${JSON.stringify(meta.method)}, not one of ${METHODS.join(', ')}`);
  }
  const h = meta.hyperparameters;
  const num = (key: keyof MemoryGeometry): number => {
    const v = h[key] ?? DEFAULT_GEOMETRY[key];
    if (typeof v !== 'number' || !Number.isFinite(v))
      throw new SpartanError(`${file}: hyperparameter "${key}" must be a finite number, got ${JSON.stringify(v)}`);
    return v;
  };
  const geometry: MemoryGeometry = {
    parents: num('parents'),
    children: num('children'),
    topK: num('topK'),
    temperature: num('temperature'),
  };
  return methodSpec(meta.method as MethodName, { geometry, trainLayerNorms: Boolean(h.trainLayerNorms ?? true) });
}

/** The max length a memory was trained with (128 when it does not say). */
export function maxLengthOf(meta: Pick<MethodMetadata, 'hyperparameters'>): number {
  return Number(meta.hyperparameters.maxLength ?? 128);
}

/**
 * Refuses tensors that are missing, unexpected, of the wrong shape for the method's geometry on `config`, or not
 * finite; and a stored max length the backbone has no positions for.
 */
export function checkMemoryTensors(
  file: string,
  tensors: TensorMap,
  meta: MethodMetadata,
  config: RobertaConfig,
  backboneShapes: Map<string, number[]>,
): void {
  let spec: MethodSpec;
  let expected: Map<string, number[]>;
  const numLabels = meta.task === 'regression' ? 1 : meta.labels.length;
  try {
    spec = methodFromMetadata(meta, file);
    expected = new Map([...methodShapes(spec, config), ...headShapes(config, numLabels)]);
  } catch (e) {
    const msg = (e as Error).message;
    throw new SpartanError(msg.startsWith(file) ? msg : `${file}: ${msg}`);
  }
  const optional = new Map<string, number[]>();
  if (spec.name === 'full') for (const [n, s] of backboneShapes) optional.set(n, s);
  else if (spec.name !== 'head') for (const n of layerNormNames(config)) optional.set(n, backboneShapes.get(n) ?? [config.hiddenSize]);
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((x, i) => x === b[i]);
  for (const [name, shape] of expected) {
    const t = tensors.get(name);
    if (!t) throw new SpartanError(`${file}: tensor ${name} is missing (the ${spec.name} method needs it)`);
    if (!same(t.shape, shape)) {
      throw new SpartanError(
        `${file}: tensor ${name} has shape [${t.shape.join(', ')}] but the ${spec.name} method's geometry on this backbone needs [${shape.join(', ')}]`,
      );
    }
  }
  for (const [name, t] of tensors) {
    if (expected.has(name)) continue;
    const shape = optional.get(name);
    if (!shape) throw new SpartanError(`${file}: tensor ${name} does not belong to a ${spec.name} memory`);
    if (!same(t.shape, shape))
      throw new SpartanError(`${file}: tensor ${name} has shape [${t.shape.join(', ')}] but the backbone's is [${shape.join(', ')}]`);
  }
  checkFinite(file, tensors);
  const maxLength = maxLengthOf(meta);
  try {
    checkSequenceLength(maxLength, config, 'its max length');
  } catch (e) {
    throw new SpartanError(`${file}: ${(e as Error).message}`);
  }
  if (maxLength < 4)
    throw new SpartanError(`${file}: its max length is ${maxLength}, fewer than the 4 tokens a text needs with its special tokens`);
}

/** NaN or ±Infinity in a weight makes every prediction NaN: refuse the file, naming the first bad tensor. */
export function checkFinite(file: string, tensors: TensorMap): void {
  for (const [name, t] of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i])) throw new SpartanError(`${file}: tensor ${name} holds a non-finite value (${d[i]}) at index ${i}`);
    }
  }
}
