/**
 * The memory file: a safetensors file holding the trained tensors (SPARTAN memories + classifier head) and, in
 * `__metadata__`, everything needed to use it safely later: which backbone (by sha256) and tokenizer it was
 * trained with, the task and label names, hyperparameters and metrics. Metadata keys are listed in
 * ARCHITECTURE.md; all values are strings (the format's rule), structured ones as JSON.
 */
import * as fs from 'node:fs';
import { SpartanError, TaskType, TensorMap } from '../types';
import { encodeSafetensors, readSafetensors } from '../io/safetensors';
import { writeFileAtomic } from '../io/atomicWrite';
import { checkFinite, checkMemoryTensors } from './memoryMethod';
import type { Backbone } from '../models/backbone';
import type { Calibration } from '../../protocol/results';

export const MEMORY_FORMAT_VERSION = 1;

export interface MemoryMetadata {
  formatVersion: number;
  method: string;
  backbone: { name: string; sha256: string };
  tokenizerHash: string;
  task: TaskType;
  labels: string[];
  hyperparameters: Record<string, unknown>;
  metrics: Record<string, unknown>;
  createdAt: string;
  /** Optional key `calibration`: the softmax/sigmoid temperature (and multi-label thresholds) fitted after training. */
  calibration?: Calibration;
  /** Optional key `provenance`: the data files (sha256, rows), label counts and command of the training run. */
  provenance?: Provenance;
}

/** Where a memory came from, for its model card. */
export interface Provenance {
  data: { file: string; sha256: string; rows: number };
  dev?: { file: string; sha256?: string; rows: number };
  labelCounts: Record<string, number>;
  /** The command line that reproduces it (`spartan train …`). */
  command: string[];
}

const REQUIRED_KEYS = [
  'format_version',
  'method',
  'backbone_name',
  'backbone_sha256',
  'tokenizer_hash',
  'task',
  'labels',
  'hyperparameters',
  'metrics',
  'created_at',
] as const;

const OUT_PROJ = 'classifier.out_proj.weight';

/** Output rows the head must have for this task and label list (regression: one output whatever the labels). */
function expectedOutputs(task: TaskType, labels: string[]): number {
  return task === 'regression' ? 1 : labels.length;
}

/** Shared by save and load: the head's output count must agree with the labels. */
function checkLabels(path: string, tensors: TensorMap, task: TaskType, labels: string[]): void {
  const out = tensors.get(OUT_PROJ);
  if (!out) return;
  const want = expectedOutputs(task, labels);
  if (out.shape[0] !== want) {
    throw new SpartanError(
      `${path}: ${OUT_PROJ} has ${out.shape[0]} output row(s) but the ${task} metadata lists ${labels.length} label(s)` +
        (task === 'regression' ? ' (regression needs exactly 1 output)' : ''),
    );
  }
}

/** Writes the memory atomically (an interrupted save never destroys the previous memory). Returns bytes written. */
export function saveMemory(path: string, tensors: TensorMap, meta: MemoryMetadata, dtype: 'float16' | 'float32'): number {
  checkLabels(path, tensors, meta.task, meta.labels);
  const metadata: Record<string, string> = {
    format_version: String(meta.formatVersion),
    method: meta.method,
    backbone_name: meta.backbone.name,
    backbone_sha256: meta.backbone.sha256,
    tokenizer_hash: meta.tokenizerHash,
    task: meta.task,
    labels: JSON.stringify(meta.labels),
    hyperparameters: JSON.stringify(meta.hyperparameters),
    metrics: JSON.stringify(meta.metrics),
    created_at: meta.createdAt,
  };
  if (meta.calibration) metadata.calibration = JSON.stringify(meta.calibration);
  if (meta.provenance) metadata.provenance = JSON.stringify(meta.provenance);
  const bytes = encodeSafetensors(tensors, dtype, metadata);
  writeFileAtomic(path, bytes);
  return bytes.length;
}

/** First 12 hex digits, enough to tell hashes apart in a message without a wall of hex. */
function shortSha(sha: string): string {
  return sha.length > 12 ? `${sha.slice(0, 12)}…` : sha;
}

function parseJsonField(path: string, key: string, value: string): unknown {
  try {
    return JSON.parse(value);
  } catch (e) {
    throw new SpartanError(`${path}: metadata "${key}" is not valid JSON (${(e as Error).message})`);
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Tensors whose last dimension is the backbone's hidden size (SPARTAN memories and the head, but the out_proj bias). */
function hasHiddenLastDim(name: string): boolean {
  return /^roberta\.encoder\.layer\.\d+\.spartan/.test(name) || /^classifier\.(dense\.(weight|bias)|out_proj\.weight)$/.test(name);
}

/**
 * Loads and checks a memory file. With a backbone, also refuses a memory trained for a different backbone, since
 * applying it would silently produce garbage.
 */
export function loadMemory(path: string, backbone?: Backbone): { tensors: TensorMap; metadata: MemoryMetadata } {
  if (!fs.existsSync(path)) throw new SpartanError(`${path}: memory file not found`);
  const file = readSafetensors(path);
  const metadata = parseMemoryMetadata(path, file.metadata);
  const tensors: TensorMap = new Map();
  for (const [name, t] of file.tensors) tensors.set(name, { shape: t.shape, data: t.data });
  checkLabels(path, tensors, metadata.task, metadata.labels);

  if (backbone) {
    checkBackbone(path, tensors, metadata, backbone);
    // Past the backbone's identity: the method, its geometry, every tensor's shape and finiteness, the max length.
    checkMemoryTensors(path, tensors, metadata, backbone.config, new Map([...backbone.weights].map(([n, t]) => [n, t.shape])));
  } else {
    checkFinite(path, tensors);
  }
  return { tensors, metadata };
}

/**
 * Checks the `__metadata__` strings of a memory file and parses them (format version, keys, task, labels, JSON
 * values) — the one metadata reader: `loadMemory` uses it, and so does the extension's memory picker on a header
 * it read without the tensors.
 */
export function parseMemoryMetadata(path: string, m: Record<string, string>): MemoryMetadata {
  if (m.format_version === undefined) {
    throw new SpartanError(`${path}: not a Spartan memory file (its safetensors metadata has no format_version)`);
  }
  if (m.format_version !== String(MEMORY_FORMAT_VERSION)) {
    throw new SpartanError(
      `${path}: memory format version ${m.format_version} is not supported by this version of Spartan (it reads version ${MEMORY_FORMAT_VERSION})`,
    );
  }
  const missingKeys = REQUIRED_KEYS.filter((k) => m[k] === undefined);
  if (missingKeys.length) throw new SpartanError(`${path}: memory metadata lacks ${missingKeys.join(', ')}`);

  if (m.task !== 'classification' && m.task !== 'regression' && m.task !== 'multilabel') {
    throw new SpartanError(`${path}: metadata task is "${m.task}" but must be "classification", "regression" or "multilabel"`);
  }
  const task: TaskType = m.task;
  const labels = parseJsonField(path, 'labels', m.labels);
  if (!Array.isArray(labels) || !labels.every((l) => typeof l === 'string')) {
    throw new SpartanError(`${path}: metadata "labels" must be a JSON array of strings`);
  }
  const seen = new Set<string>();
  for (const l of labels) {
    if (seen.has(l)) throw new SpartanError(`${path}: metadata "labels" lists ${JSON.stringify(l)} twice`);
    seen.add(l);
  }
  const hyperparameters = parseJsonField(path, 'hyperparameters', m.hyperparameters);
  if (!isPlainObject(hyperparameters)) throw new SpartanError(`${path}: metadata "hyperparameters" must be a JSON object`);
  const metrics = parseJsonField(path, 'metrics', m.metrics);
  if (!isPlainObject(metrics)) throw new SpartanError(`${path}: metadata "metrics" must be a JSON object`);

  const metadata: MemoryMetadata = {
    formatVersion: Number(m.format_version),
    method: m.method,
    backbone: { name: m.backbone_name, sha256: m.backbone_sha256 },
    tokenizerHash: m.tokenizer_hash,
    task,
    labels,
    hyperparameters,
    metrics,
    createdAt: m.created_at,
  };
  if (m.calibration !== undefined) metadata.calibration = parseCalibration(path, m.calibration);
  if (m.provenance !== undefined) {
    const p = parseJsonField(path, 'provenance', m.provenance);
    if (!isPlainObject(p)) throw new SpartanError(`${path}: metadata "provenance" must be a JSON object`);
    metadata.provenance = p as unknown as Provenance;
  }
  return metadata;
}

/** The temperature must be a positive finite number, thresholds numbers in [0, 1]: they scale every probability. */
function parseCalibration(path: string, value: string): Calibration {
  const c = parseJsonField(path, 'calibration', value);
  if (!isPlainObject(c) || typeof c.temperature !== 'number' || !(c.temperature > 0) || !Number.isFinite(c.temperature)) {
    throw new SpartanError(`${path}: metadata "calibration" must be a JSON object with a positive "temperature"`);
  }
  if (c.thresholds !== undefined) {
    const t = c.thresholds;
    if (!isPlainObject(t) || !Object.values(t).every((v) => typeof v === 'number' && v >= 0 && v <= 1)) {
      throw new SpartanError(`${path}: metadata "calibration.thresholds" must map label names to numbers in [0, 1]`);
    }
  }
  return c as unknown as Calibration;
}

function checkBackbone(path: string, tensors: TensorMap, meta: MemoryMetadata, backbone: Backbone): void {
  const d = backbone.config.hiddenSize;
  const shapeProblems: string[] = [];
  for (const [name, t] of tensors) {
    if (hasHiddenLastDim(name) && t.shape[t.shape.length - 1] !== d) {
      shapeProblems.push(`${name} has shape [${t.shape.join(', ')}]`);
    }
    const layer = /^roberta\.encoder\.layer\.(\d+)\./.exec(name);
    if (layer && Number(layer[1]) >= backbone.config.numLayers) {
      shapeProblems.push(`${name} is for layer ${layer[1]} but the backbone has ${backbone.config.numLayers} layers`);
    }
  }
  const shapeNote = shapeProblems.length
    ? `; its tensors do not fit the loaded backbone (hidden size ${d}): ${shapeProblems.slice(0, 5).join('; ')}` +
      (shapeProblems.length > 5 ? `; … (${shapeProblems.length} in all)` : '')
    : '';
  if (meta.backbone.sha256 !== backbone.weightsSha256) {
    throw new SpartanError(
      `${path} was trained for backbone "${meta.backbone.name}" (sha256 ${shortSha(meta.backbone.sha256)}) but the loaded backbone is ` +
        `"${backbone.id}" (sha256 ${shortSha(backbone.weightsSha256)})${shapeNote}`,
    );
  }
  if (shapeProblems.length) throw new SpartanError(`${path}: memory file is inconsistent with its own backbone${shapeNote}`);
}
