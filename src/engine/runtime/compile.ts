/**
 * Turns a model description into ONNX bytes: the inference graph (logits) and the training graph (loss, logits
 * and the gradient of the mean loss with respect to every trained tensor).
 */
import { buildBackward } from '../autodiff/backward';
import { DROPOUT_MASK_PREFIX, GraphOptions, buildRoberta } from '../models/robertaGraph';
import { ExternalData, ExternalFiles, toModelBytes, toModelWithExternalData } from '../onnx/serialize';
import { SpartanError, TensorMap } from '../types';

export interface CompiledGraph {
  bytes: Uint8Array;
  /** The large initializers (int8 and prepacked float32 weights), supplied to the session beside `bytes`. */
  externalData: ExternalData[];
  /** The files ONNX Runtime reads the file-backed initializers from (float32 linears of the backbone's file). */
  externalFiles?: ExternalFiles;
  /** Names of the parameter inputs the graph reads (frozen and trained). */
  parameterInputs: string[];
  /** Names of the batch inputs. */
  batchInputs: string[];
  /** Dropout keep-mask inputs (training graphs with dropout) and their symbolic shapes. */
  maskInputs: { name: string; shape: (number | string)[] }[];
  /** Dropout probability the masks are drawn with. */
  dropout: number;
  /** Whether the frozen linears run int8 (`--quantize int8`). */
  int8: boolean;
}

export const OUTPUT_LOGITS = 'logits_out';
export const OUTPUT_LOSS = 'loss_out';
export const gradOutputName = (param: string) => `grad.${param}`;

function describe(
  b: ReturnType<typeof buildRoberta>['b'],
  opts: GraphOptions,
): Omit<CompiledGraph, 'bytes' | 'externalData' | 'externalFiles'> {
  const inputs = b.g.inputs.map((v) => v.name);
  return {
    parameterInputs: inputs.filter((n) => opts.parameterShapes.has(n)),
    batchInputs: inputs.filter((n) => !opts.parameterShapes.has(n) && !n.startsWith(DROPOUT_MASK_PREFIX)),
    maskInputs: b.g.inputs.filter((v) => v.name.startsWith(DROPOUT_MASK_PREFIX)).map((v) => ({ name: v.name, shape: v.shape })),
    dropout: opts.dropout,
    int8: opts.int8 !== undefined,
  };
}

/** Inference: outputs `logits_out` [B, L]. The last layer computes only the <s> rows the head reads. */
export function compileInference(opts: GraphOptions): CompiledGraph {
  const built = buildRoberta({ headRowsOnly: true, ...opts, training: false });
  const g = built.b.g;
  g.node('Identity', [built.logits], [{ name: OUTPUT_LOGITS, type: 'float32', shape: g.shape(built.logits) }]);
  g.output(OUTPUT_LOGITS);
  return { ...toModelWithExternalData(g, 'spartan_inference'), ...describe(built.b, opts) };
}

/** Training: outputs `loss_out` (scalar), `logits_out` and `grad.<name>` for each of `trainable`. */
export function compileTraining(opts: GraphOptions, trainable: string[]): CompiledGraph {
  const built = buildRoberta({ headRowsOnly: true, ...opts, training: true });
  const { b } = built;
  const g = b.g;
  const frozenInt8 = trainable.filter((name) => b.int8Weights.includes(name));
  if (frozenInt8.length)
    throw new SpartanError(
      `--quantize int8 runs the backbone's linears as frozen int8 weights, but this method trains them (${frozenInt8[0]}…): train it in float32`,
    );
  for (const name of trainable) b.param(name);
  const grads = buildBackward(g, built.loss!, trainable);
  // Twins are made by the gradient rules (the input gradients' Gemms): a trained weight's would hold stale values.
  const twinned = trainable.find((name) => b.prepackedWeights.includes(name));
  if (twinned) throw new Error(`compile: ${twinned} is trained, so it cannot have a prepacked (frozen) twin`);
  g.node('Identity', [built.loss!], [{ name: OUTPUT_LOSS, type: 'float32', shape: [] }]);
  g.node('Identity', [built.logits], [{ name: OUTPUT_LOGITS, type: 'float32', shape: g.shape(built.logits) }]);
  g.output(OUTPUT_LOSS);
  g.output(OUTPUT_LOGITS);
  trainable.forEach((name, i) => {
    const out = gradOutputName(name);
    g.node('Identity', [grads[i]], [{ name: out, type: 'float32', shape: g.shape(name) }]);
    g.output(out);
  });
  return { ...toModelWithExternalData(g, 'spartan_training'), ...describe(b, opts) };
}

/**
 * A self-contained task model: inputs `input_ids` and `attention_mask` (int64 [B, T]), outputs `logits` and,
 * for classification, `probabilities` = softmax(logits / T) (multi-label: σ(logits / T)) with the memory's
 * calibration temperature; every parameter (backbone and memory) stored inside as an initializer.
 */
export function compileStandalone(opts: GraphOptions, params: TensorMap, temperature = 1): Uint8Array {
  const built = buildRoberta({ headRowsOnly: true, ...opts, training: false, standaloneInputs: true });
  const g = built.b.g;
  for (const name of opts.parameterShapes.keys()) {
    if (!g.values.has(name)) continue;
    const t = params.get(name);
    if (!t) throw new Error(`export: parameter ${name} is missing`);
    g.bindInput(name, t.data);
  }
  g.node('Identity', [built.logits], [{ name: 'logits', type: 'float32', shape: g.shape(built.logits) }]);
  g.output('logits');
  if (opts.task !== 'regression') {
    const scaled = temperature === 1 ? built.logits : g.div(built.logits, g.constF(temperature));
    const out = { name: 'probabilities', type: 'float32' as const, shape: g.shape(built.logits) };
    if (opts.task === 'multilabel') g.node('Sigmoid', [scaled], [out]);
    else g.node('Softmax', [scaled], [out], { axis: -1 });
    g.output('probabilities');
  }
  return toModelBytes(g, 'spartan_task_model');
}
