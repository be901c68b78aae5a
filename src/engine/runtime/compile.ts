/**
 * Turns a model description into ONNX bytes: the inference graph (logits) and the training graph (loss, logits
 * and the gradient of the mean loss with respect to every trained tensor).
 */
import { buildBackward } from '../autodiff/backward';
import { foldScalarMulsIntoGemms } from '../onnx/foldScales';
import { DROPOUT_MASK_PREFIX, GraphOptions, buildRoberta } from '../models/robertaGraph';
import { ExternalData, ExternalFiles, toModelBytes, toModelWithExternalData } from '../onnx/serialize';
import { SpartanError, TensorMap } from '../types';
import type { Graph, Node } from '../onnx/graph';

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
  /**
   * Training graphs: the bool input that switches the backward pass on. Off, the graph is the forward pass alone
   * (with keep-masks of ones, no dropout): the dev set is evaluated on the training session, whose prepacked
   * weights then serve both, instead of on a session of its own with its own copy of them.
   */
  gradientSwitch?: string;
}

export const GRADIENT_SWITCH = 'compute_gradients';

export const OUTPUT_LOGITS = 'logits_out';
export const OUTPUT_LOSS = 'loss_out';
/** Training graphs: Σ g² over all the gradients of the run (a scalar; 0 when the backward pass is off). */
export const OUTPUT_GRAD_SQUARES = 'grad_squares_out';
export const gradOutputName = (param: string) => `grad.${param}`;

function describe(
  b: ReturnType<typeof buildRoberta>['b'],
  opts: GraphOptions,
): Omit<CompiledGraph, 'bytes' | 'externalData' | 'externalFiles'> {
  const inputs = b.g.inputs.map((v) => v.name);
  return {
    parameterInputs: inputs.filter((n) => opts.parameterShapes.has(n)),
    batchInputs: inputs.filter((n) => !opts.parameterShapes.has(n) && !n.startsWith(DROPOUT_MASK_PREFIX) && n !== GRADIENT_SWITCH),
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
  const forwardNodes = g.nodes.length;
  const grads = buildBackward(g, built.loss!, trainable);
  // Twins are made by the gradient rules (the input gradients' Gemms): a trained weight's would hold stale values.
  const twinned = trainable.find((name) => b.prepackedWeights.includes(name));
  if (twinned) throw new Error(`compile: ${twinned} is trained, so it cannot have a prepacked (frozen) twin`);
  // Σ g² over every gradient, for clipping by the global norm: one pass in ONNX Runtime's vectorised reductions
  // instead of one in JS over all the trained values (training/microBatch.ts uses it for single-run steps).
  const squares = g.sum(grads.map((d) => g.node('ReduceSumSquare', [d], [{ type: 'float32', shape: [] }], { keepdims: 0 })[0]));
  // Only backward Muls are folded; of the values read outside g.nodes, only the branch's outputs can be one.
  foldScalarMulsIntoGemms(g, { from: forwardNodes, alsoRead: [...grads, squares] });
  gateBackward(g, forwardNodes, trainable, grads, squares);
  g.node('Identity', [built.loss!], [{ name: OUTPUT_LOSS, type: 'float32', shape: [] }]);
  g.node('Identity', [built.logits], [{ name: OUTPUT_LOGITS, type: 'float32', shape: g.shape(built.logits) }]);
  g.output(OUTPUT_LOSS);
  g.output(OUTPUT_LOGITS);
  for (const name of trainable) g.output(gradOutputName(name));
  g.output(OUTPUT_GRAD_SQUARES);
  return { ...toModelWithExternalData(g, 'spartan_training'), ...describe(b, opts), gradientSwitch: GRADIENT_SWITCH };
}

/**
 * Moves the backward pass (every node from `forwardNodes` on) into the `then` branch of an If on GRADIENT_SWITCH,
 * whose outputs are the `grad.<name>` values and OUTPUT_GRAD_SQUARES (`squares`); the `else` branch gives empty
 * tensors of the same ranks (ONNX Runtime merges the branches' shapes) and 0, so that a run with the switch off is
 * the forward pass alone.
 */
function gateBackward(g: Graph, forwardNodes: number, trainable: string[], grads: string[], squares: string): void {
  const backward = g.nodes.splice(forwardNodes);
  const symbolic = (t: string) => g.shape(t).map((_, d) => `${t}_d${d}`);
  const outputs = (branch: string) =>
    trainable.map((t) => ({ name: `${branch}.${gradOutputName(t)}`, type: 'float32' as const, shape: symbolic(t) }));
  const identity = (input: string, output: string): Node => ({ op: 'Identity', inputs: [input], outputs: [output], attrs: {} });
  const empty = new Map<number, string>();
  const emptyOfRank = (rank: number) => {
    if (!empty.has(rank))
      empty.set(rank, g.initializer(`no_gradient_rank${rank}`, 'float32', [0, ...Array(rank - 1).fill(1)], new Float32Array(0)));
    return empty.get(rank)!;
  };
  const scalar = (branch: string) => ({ name: `${branch}.${OUTPUT_GRAD_SQUARES}`, type: 'float32' as const, shape: [] });
  const thenOut = [...outputs('backward'), scalar('backward')];
  const elseOut = [...outputs('forward_only'), scalar('forward_only')];
  // A branch output is the value itself where a backward node makes it and no other output shares it: renamed
  // rather than copied by an Identity (1.7 ms of a 600 ms roberta-base run copying 1.66 M gradient values).
  const results = [...grads, squares];
  const made = new Set(backward.flatMap((n) => n.outputs));
  const renamed = new Map<string, string>();
  results.forEach((d, i) => {
    if (made.has(d) && results.indexOf(d) === results.lastIndexOf(d)) renamed.set(d, thenOut[i].name);
  });
  const rename = (v: string) => renamed.get(v) ?? v;
  for (const n of backward) {
    n.inputs = n.inputs.map(rename);
    n.outputs = n.outputs.map(rename);
  }
  const zero = g.initializer('no_gradient_squares', 'float32', [], new Float32Array(1));
  g.input(GRADIENT_SWITCH, 'bool', []);
  g.node(
    'If',
    [GRADIENT_SWITCH],
    [
      ...trainable.map((t) => ({ name: gradOutputName(t), type: 'float32' as const, shape: symbolic(t) })),
      { name: OUTPUT_GRAD_SQUARES, type: 'float32' as const, shape: [] },
    ],
    {
      then_branch: {
        graph: {
          name: 'backward',
          nodes: [...backward, ...results.flatMap((d, i) => (renamed.has(d) ? [] : [identity(d, thenOut[i].name)]))],
          outputs: thenOut,
        },
      },
      else_branch: {
        graph: {
          name: 'forward_only',
          nodes: [
            ...trainable.map((t, i) => identity(emptyOfRank(Math.max(1, g.shape(t).length)), elseOut[i].name)),
            identity(zero, elseOut[trainable.length].name),
          ],
          outputs: elseOut,
        },
      },
    },
  );
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
