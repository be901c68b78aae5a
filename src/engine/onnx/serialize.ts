/**
 * Serialises the IR of `graph.ts` into ONNX ModelProto bytes with `onnx-proto` (protobufjs code generated from
 * onnx.proto), so no protobuf encoding is written by hand.
 */
import { onnx } from 'onnx-proto';
import * as path from 'node:path';
import { Graph, MS_DOMAIN, MS_DOMAIN_OPS, ONNX_ELEM_TYPE, OPSET, ValueInfo, AttrValue, Constant, FileData, Node, Subgraph } from './graph';

/** ONNX IR version 9 (ONNX 1.15) is the one that goes with opset 20. */
const IR_VERSION = 9;

/** An initializer's bytes supplied beside the model (ONNX external data from memory; `path` is its location). */
export interface ExternalData {
  path: string;
  data: Uint8Array;
}

/**
 * Initializers at least this large leave the protobuf as external data: ONNX Runtime reads them from the engine's
 * own arrays (copying them once into its tensors, which it then prepacks and frees) instead of from a serialised copy.
 */
const EXTERNAL_MIN_BYTES = 1 << 16;

/** The files a model's file-backed initializers lie in (graph.ts `fileInitializer`): one folder, which the session is told. */
export interface ExternalFiles {
  folder: string;
  /** Each file once, with the stamp its offsets were read under. */
  files: FileData[];
}

/**
 * The model with its large initializers as in-memory external data and its file-backed ones as external data in
 * their files (sessions); `toModelBytes` embeds them all (files).
 */
export function toModelWithExternalData(
  graph: Graph,
  name = 'spartan',
): { bytes: Uint8Array; externalData: ExternalData[]; externalFiles?: ExternalFiles } {
  const externalData: ExternalData[] = [];
  let externalFiles: ExternalFiles | undefined;
  const bytes = encode(graph, name, (c) => {
    if (c.file) {
      // ONNX resolves a location against one folder, and refuses absolute paths and `..`: every file is in it.
      const folder = path.dirname(c.file.path);
      externalFiles ??= { folder, files: [] };
      if (folder !== externalFiles.folder)
        throw new Error(`serialize: ${c.name} is read from ${c.file.path}, outside ${externalFiles.folder} where the others are`);
      if (!externalFiles.files.some((f) => f.path === c.file!.path)) externalFiles.files.push(c.file);
      return external(path.basename(c.file.path), c.file.offset, c.file.length);
    }
    const data = rawBytes(c);
    if (data.byteLength < EXTERNAL_MIN_BYTES) return undefined;
    externalData.push({ path: c.name, data });
    return external(c.name, 0, data.byteLength);
  });
  return { bytes, externalData, ...(externalFiles ? { externalFiles } : {}) };
}

function external(location: string, offset: number, length: number): Partial<onnx.ITensorProto> {
  return {
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: location },
      { key: 'offset', value: String(offset) },
      { key: 'length', value: String(length) },
    ],
  };
}

/** The model with every initializer inside (a self-contained file). */
export function toModelBytes(graph: Graph, name = 'spartan'): Uint8Array {
  return encode(graph, name, (c) => {
    if (c.file) throw new Error(`serialize: ${c.name} lies in ${c.file.path}; a self-contained model needs its values`);
    return undefined;
  });
}

type ExternalPlacement = (c: Constant) => Partial<onnx.ITensorProto> | undefined;

function encode(graph: Graph, name: string, external: ExternalPlacement): Uint8Array {
  // The contrib domain is imported only by graphs that use one of its ops (int8 graphs): fp32 graphs are unchanged.
  const contrib = allNodes(graph.nodes).some((n) => MS_DOMAIN_OPS.has(n.op));
  const model: onnx.IModelProto = {
    irVersion: IR_VERSION,
    producerName: 'spartan',
    opsetImport: [{ domain: '', version: OPSET }, ...(contrib ? [{ domain: MS_DOMAIN, version: 1 }] : [])],
    graph: {
      name,
      node: nodeProtos(graph.nodes, 'n'),
      input: graph.inputs.map(valueInfo),
      output: graph.outputs.map(valueInfo),
      initializer: graph.constants.map((c) => tensorProto(c, external)),
    },
  };
  return onnx.ModelProto.encode(model).finish();
}

function nodeProtos(nodes: Node[], prefix: string): onnx.INodeProto[] {
  return nodes.map((n, i) => ({
    name: `${prefix}${i}_${n.op}`,
    opType: n.op,
    ...(MS_DOMAIN_OPS.has(n.op) ? { domain: MS_DOMAIN } : {}),
    input: n.inputs,
    output: n.outputs,
    attribute: Object.entries(n.attrs).map(([k, v]) => attribute(k, v)),
  }));
}

/** The nodes of a graph and of every subgraph in it. */
function allNodes(nodes: Node[]): Node[] {
  return nodes.flatMap((n) => [n, ...Object.values(n.attrs).flatMap((v) => (isSubgraph(v) ? allNodes(v.graph.nodes) : []))]);
}

const isSubgraph = (v: AttrValue): v is { graph: Subgraph } => typeof v === 'object' && !Array.isArray(v) && 'graph' in v;

function valueInfo(v: ValueInfo): onnx.IValueInfoProto {
  return {
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_ELEM_TYPE[v.type],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  };
}

function rawBytes(c: Constant): Uint8Array {
  return new Uint8Array(c.data.buffer, c.data.byteOffset, c.data.byteLength);
}

function tensorProto(c: Constant, external: ExternalPlacement): onnx.ITensorProto {
  const dims = c.shape.map((d) => {
    if (typeof d !== 'number') throw new Error(`constant ${c.name} has a symbolic shape`);
    return d;
  });
  return {
    name: c.name,
    dims,
    dataType: ONNX_ELEM_TYPE[c.type],
    ...(external(c) ?? { rawData: rawBytes(c) }),
  };
}

function attribute(name: string, v: AttrValue): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'number') return { name, type: T.INT, i: v };
  if (typeof v === 'string') return { name, type: T.STRING, s: new TextEncoder().encode(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if ('float' in v) return { name, type: T.FLOAT, f: v.float };
  if ('tensorFloat' in v) {
    const data = Float32Array.from([v.tensorFloat]);
    return { name, type: T.TENSOR, t: { dims: [1], dataType: ONNX_ELEM_TYPE.float32, rawData: new Uint8Array(data.buffer) } };
  }
  if ('graph' in v) {
    const sub = v.graph;
    return { name, type: T.GRAPH, g: { name: sub.name, node: nodeProtos(sub.nodes, `${sub.name}_n`), output: sub.outputs.map(valueInfo) } };
  }
  return { name, type: T.FLOATS, floats: v.floats };
}
