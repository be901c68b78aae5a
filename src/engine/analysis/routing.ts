/**
 * Parent specialisation (the paper's Figure 2): for a trained SPARTAN memory and a labelled file, how often each
 * parent cell is among the K parents a token is routed to at one layer, per label, and the mean gate weight.
 *
 * The inference graph is built as usual and the parent gate tensor of the requested layer — the softmax the
 * SPARTAN hook names `parent_gates__<n>` ([N, Np], N = B·T flattened tokens) — is added as a second output. Only
 * real tokens count (attention mask 1, <s> and </s> included); padding rows of the flattened batch are skipped.
 *
 * Labels: classification rows are grouped by their label name (the file's classes in natural order);
 * regression rows by their score rounded to the nearest integer (STS-B: "0" … "5").
 */
import { encodeExamples, makeBatches, padBatch } from '../data/batching';
import { Example, naturalCompare } from '../data/jsonl';
import { MethodSpec } from '../methods';
import { spartanNames } from '../methods/spartan';
import { Backbone } from '../models/backbone';
import { buildRoberta } from '../models/robertaGraph';
import { toModelWithExternalData } from '../onnx/serialize';
import { CompiledGraph, OUTPUT_LOGITS } from '../runtime/compile';
import { GraphSession } from '../runtime/session';
import { RobertaTokenizer } from '../tokenizers/robertaTokenizer';
import { graphOptions, layerParams } from '../training/trainer';
import { SpartanError, TaskType, TensorMap } from '../types';
import type { RoutingReport } from '../../protocol/results';

export const OUTPUT_GATES = 'parent_gates_out';

export type { RoutingReport };

export interface RoutingInput {
  backbone: Backbone;
  tokenizer: RobertaTokenizer;
  method: MethodSpec;
  task: TaskType;
  /** The memory's class names (classification) — the head's output count. */
  memoryLabels: string[];
  tensors: TensorMap;
  rows: Example[];
  file: string;
  layer: number;
  maxLength: number;
  batchSize?: number;
  threads: number;
}

/** The inference graph with the gates of `layer` as an extra output. */
export function compileRouting(backbone: Backbone, method: MethodSpec, task: TaskType, numLabels: number, layer: number): CompiledGraph {
  const opts = graphOptions(backbone, method, task, numLabels);
  const built = buildRoberta({ ...opts, training: false });
  const g = built.b.g;
  // The gates of layer L: the Softmax named parent_gates__* downstream of that layer's parent-key Gemm. The hook
  // runs layer by layer, so it is the first such Softmax after the Gemm that reads the layer's parent keys.
  const keys = spartanNames(layer).parentKeys;
  const gemmAt = g.nodes.findIndex((n) => n.op === 'Gemm' && n.inputs.includes(keys));
  if (gemmAt < 0) throw new SpartanError(`layer ${layer} has no SPARTAN memory (the model has layers 0…${backbone.config.numLayers - 1})`);
  const softmax = g.nodes.slice(gemmAt).find((n) => n.op === 'Softmax' && n.outputs[0].startsWith('parent_gates__'));
  if (!softmax) throw new Error(`routing: no parent_gates value after ${keys} in the graph`);
  const gates = softmax.outputs[0];
  g.node('Identity', [gates], [{ name: OUTPUT_GATES, type: 'float32', shape: g.shape(gates) }]);
  g.output(OUTPUT_GATES);
  // Logits too: the graph is otherwise the one `classify` runs, and the output keeps the head's inputs used.
  g.node('Identity', [built.logits], [{ name: OUTPUT_LOGITS, type: 'float32', shape: g.shape(built.logits) }]);
  g.output(OUTPUT_LOGITS);
  const inputs = g.inputs.map((v) => v.name);
  return {
    ...toModelWithExternalData(g, 'spartan_routing'),
    parameterInputs: inputs.filter((n) => opts.parameterShapes.has(n)),
    batchInputs: inputs.filter((n) => !opts.parameterShapes.has(n)),
    maskInputs: [],
    dropout: 0,
    int8: opts.int8 !== undefined,
  };
}

/** Groups rows: class name, or the rounded regression score. */
export function routingLabel(row: Example, task: TaskType): string {
  return task === 'regression' ? String(Math.round(row.label as number)) : String(row.label);
}

export async function parentRouting(input: RoutingInput): Promise<RoutingReport> {
  const { backbone, tokenizer, method, task, layer } = input;
  if (method.name !== 'spartan') throw new SpartanError(`routing needs a SPARTAN memory; this one is "${method.name}"`);
  if (!Number.isInteger(layer) || layer < 0 || layer >= backbone.config.numLayers) {
    throw new SpartanError(`--layer ${layer} is out of range: the backbone has layers 0…${backbone.config.numLayers - 1}`);
  }
  const { parents: np, topK } = method.geometry;
  const numLabels = task === 'regression' ? 1 : input.memoryLabels.length;
  if (input.rows.length === 0) throw new SpartanError(`${input.file} has no rows`);
  const fileTask: TaskType = typeof input.rows[0].label === 'number' ? 'regression' : 'classification';
  if (fileTask !== task) throw new SpartanError(`${input.file} is a ${fileTask} file but the memory is ${task}`);
  const labels = [...new Set(input.rows.map((r) => routingLabel(r, task)))].sort(naturalCompare);
  const labelIndex = new Map(labels.map((l, i) => [l, i]));

  // Labels are not needed by the graph; encode against the file's own classes (a file of one class is fine).
  const encoded = encodeExamples(input.rows, tokenizer, task, task === 'regression' ? [] : labels, input.maxLength, input.file).examples;
  const group = input.rows.map((r) => labelIndex.get(routingLabel(r, task))!);

  const counts = labels.map(() => new Float64Array(np));
  const gateSums = labels.map(() => new Float64Array(np));
  const tokens = labels.map(() => 0);
  const session = await GraphSession.create(compileRouting(backbone, method, task, numLabels, layer), { threads: input.threads });
  const params = layerParams(backbone, input.tensors);
  try {
    const batches = makeBatches(
      encoded.map((e) => e.ids.length),
      input.batchSize ?? 32,
      { shuffle: false, seed: 0, bucket: true },
    );
    const order = new Array<number>(np);
    for (const indices of batches) {
      const batch = padBatch(
        indices.map((i) => encoded[i]),
        tokenizer.padId,
      );
      const out = await session.run(params, batch, task, numLabels);
      const gates = out[OUTPUT_GATES].data as Float32Array; // [B·T, Np]
      for (let b = 0; b < batch.batch; b++) {
        const k = group[indices[b]];
        for (let t = 0; t < batch.seqLen; t++) {
          if (batch.attentionMask[b * batch.seqLen + t] === 0) continue;
          const row = (b * batch.seqLen + t) * np;
          tokens[k]++;
          // The K largest gates are the selected parents (the others are exactly 0 after the masked softmax;
          // ranking rather than testing > 0 keeps exactly K when a kept logit ties or a gate underflows).
          for (let p = 0; p < np; p++) order[p] = p;
          order.sort((x, y) => gates[row + y] - gates[row + x] || x - y);
          for (let j = 0; j < topK; j++) counts[k][order[j]]++;
          for (let p = 0; p < np; p++) gateSums[k][p] += gates[row + p];
        }
      }
    }
  } finally {
    await session.release();
  }
  return {
    layer,
    parents: np,
    topK,
    labels,
    tokens,
    counts: counts.map((c, k) => Array.from(c, (v) => (tokens[k] ? v / tokens[k] : 0))),
    meanGate: gateSums.map((s, k) => Array.from(s, (v) => (tokens[k] ? v / tokens[k] : 0))),
  };
}
