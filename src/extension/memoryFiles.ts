/**
 * Memory files on disk: naming, listing, and reading the safetensors `__metadata__` header without loading
 * tensors. Node-only (no `vscode` import) so the unit tests run it directly.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensorsHeaderAsync, readSafetensorsHeaderSync, parseMemoryMetadata, type TaskType } from '../engine/light';

export const MEMORY_EXT = '.safetensors';

/** Task names become file names: letters, digits, '-', '_', '.', starting with a letter or digit, ≤ 64 chars. */
export function validateTaskName(name: string): string | undefined {
  const n = name.trim();
  if (!n) return 'Give the task a name.';
  if (n.length > 64) return 'At most 64 characters.';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(n)) return "Use letters, digits, '-', '_' and '.', starting with a letter or digit.";
  if (n.endsWith('.')) return 'The name cannot end with a dot.';
  return undefined;
}

/** A default task name from a data file name: `data/sst2.train.jsonl` → `sst2`. */
export function defaultTaskName(file: string): string {
  let base = path.basename(file).replace(/\.jsonl$/i, '');
  base = base.replace(/[._-](train|training|dev|valid|validation|test)$/i, '');
  base = base
    .replace(/[^A-Za-z0-9._-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .replace(/\.+$/, '');
  return base.slice(0, 64) || 'task';
}

export function memoryPath(folder: string, task: string): string {
  return path.join(folder, task + MEMORY_EXT);
}

export interface MemoryInfo {
  path: string;
  name: string;
  bytes: number;
  mtime: Date;
  /** The raw `__metadata__` strings (keys beyond the engine's, such as `trained_by`, are read from here). */
  metadata: Record<string, string>;
  taskType: TaskType;
  labels: string[];
  /** The numeric metrics the trainer recorded. */
  metrics?: Record<string, number>;
  hyperparameters: Record<string, unknown>;
  backboneName: string;
  /** Whether the task takes text pairs (hyperparameter `pair`), when the file says so. */
  pair?: boolean;
  /** Which trainer wrote the memory, on how many ranks and hosts (metadata `trained_by`, when present). */
  trainedBy?: TrainedBy;
}

/** Metadata `trained_by` (JSON), as python/spartan_torch writes it: where a memory was trained. */
export interface TrainedBy {
  trainer: string;
  worldSize?: number;
  hosts?: string[];
  device?: string;
}

function parseTrainedBy(value: unknown): TrainedBy | undefined {
  if (!value || typeof value !== 'object' || typeof (value as TrainedBy).trainer !== 'string') return undefined;
  const v = value as Record<string, unknown>;
  return {
    trainer: v.trainer as string,
    ...(typeof v.worldSize === 'number' ? { worldSize: v.worldSize } : {}),
    ...(Array.isArray(v.hosts) ? { hosts: v.hosts.map(String) } : {}),
    ...(typeof v.device === 'string' ? { device: v.device } : {}),
  };
}

/** `spartan_torch · 4 ranks on node1, node2 · cuda`: where a memory was trained, for the memory picker. */
export function formatTrainedBy(t: TrainedBy | undefined): string {
  if (!t) return '';
  const ranks = t.worldSize && t.worldSize > 1 ? ` · ${t.worldSize} ranks` : '';
  const hosts = t.hosts?.length
    ? `${ranks ? ' on' : ' · on'} ${t.hosts.slice(0, 3).join(', ')}${t.hosts.length > 3 ? ` +${t.hosts.length - 3}` : ''}`
    : '';
  const device = t.device && t.device !== 'cpu' ? ` · ${t.device}` : '';
  return `${t.trainer}${ranks}${hosts}${device}`;
}

/**
 * Reads the JSON header of a safetensors file (8-byte little-endian length + JSON): regular files only, header
 * bounded (see src/engine/io/safetensorsHeader.ts, which also has the asynchronous form used by listings).
 */
export function readSafetensorsHeader(file: string): Record<string, unknown> {
  return readSafetensorsHeaderSync(file);
}

function tryJson(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

export function readMemoryInfo(file: string): MemoryInfo {
  const st = fs.statSync(file);
  return memoryInfoFromHeader(file, readSafetensorsHeader(file), st.size, st.mtime);
}

/** As readMemoryInfo, without blocking (the extension host's listings and status bar). */
export async function readMemoryInfoAsync(file: string): Promise<MemoryInfo> {
  const { header, size, mtime } = await readSafetensorsHeaderAsync(file);
  return memoryInfoFromHeader(file, header, size, mtime);
}

function memoryInfoFromHeader(file: string, header: Record<string, unknown>, bytes: number, mtime: Date): MemoryInfo {
  const raw = (header.__metadata__ ?? {}) as Record<string, unknown>;
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) metadata[k] = typeof v === 'string' ? v : JSON.stringify(v);
  // The engine's metadata checks, as loadMemory applies them: a file it would refuse is listed with that error.
  const meta = parseMemoryMetadata(file, metadata);
  const metrics: Record<string, number> = {};
  for (const [k, v] of Object.entries(meta.metrics)) if (typeof v === 'number') metrics[k] = v;
  const pair = meta.hyperparameters.pair;
  return {
    path: file,
    name: path.basename(file, MEMORY_EXT),
    bytes,
    mtime,
    metadata,
    taskType: meta.task,
    labels: meta.labels,
    metrics: Object.keys(metrics).length ? metrics : undefined,
    hyperparameters: meta.hyperparameters,
    backboneName: meta.backbone.name,
    pair: typeof pair === 'boolean' ? pair : undefined,
    trainedBy: parseTrainedBy(tryJson(metadata.trained_by)),
  };
}

/** As listMemories, without blocking: the headers are read asynchronously (and never from special files). */
export async function listMemoriesAsync(folder: string): Promise<(MemoryInfo | { path: string; name: string; error: string })[]> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(folder)).filter((n) => n.endsWith(MEMORY_EXT));
  } catch {
    return [];
  }
  // A few reads at a time: a folder of thousands of files must not exhaust file descriptors (EMFILE).
  const out: (MemoryInfo | { path: string; name: string; error: string })[] = [];
  let next = 0;
  const worker = async () => {
    while (next < names.length) {
      const n = names[next++];
      const p = path.join(folder, n);
      try {
        out.push(await readMemoryInfoAsync(p));
      } catch (e) {
        out.push({ path: p, name: path.basename(n, MEMORY_EXT), error: (e as Error).message });
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(8, names.length) }, worker));
  out.sort((a, b) => ('mtime' in b ? b.mtime.getTime() : 0) - ('mtime' in a ? a.mtime.getTime() : 0));
  return out;
}

/**
 * The newest regular memory file in a folder by mtime, from `stat` alone (no file is opened): what the status bar
 * needs at activation, cheap and unable to block on a special file.
 */
export async function newestMemoryFile(folder: string): Promise<string | undefined> {
  let names: string[];
  try {
    names = (await fs.promises.readdir(folder)).filter((n) => n.endsWith(MEMORY_EXT));
  } catch {
    return undefined;
  }
  let best: { p: string; t: number } | undefined;
  for (const n of names) {
    const p = path.join(folder, n);
    const st = await fs.promises.stat(p).catch(() => undefined);
    if (st?.isFile() && (!best || st.mtimeMs > best.t)) best = { p, t: st.mtimeMs };
  }
  return best?.p;
}

/** The synchronous form of newestMemoryFile (stat only; never opens a file, so it cannot block on one). */
export function newestMemoryFileSync(folder: string): string | undefined {
  let names: string[];
  try {
    names = fs.readdirSync(folder).filter((n) => n.endsWith(MEMORY_EXT));
  } catch {
    return undefined;
  }
  let best: { p: string; t: number } | undefined;
  for (const n of names) {
    const p = path.join(folder, n);
    const st = fs.statSync(p, { throwIfNoEntry: false });
    if (st?.isFile() && (!best || st.mtimeMs > best.t)) best = { p, t: st.mtimeMs };
  }
  return best?.p;
}

/** Memory files in a folder, newest first; unreadable files are returned with `error`. */
export function listMemories(folder: string): (MemoryInfo | { path: string; name: string; error: string })[] {
  let names: string[];
  try {
    names = fs.readdirSync(folder).filter((n) => n.endsWith(MEMORY_EXT));
  } catch {
    return [];
  }
  const out: (MemoryInfo | { path: string; name: string; error: string })[] = [];
  for (const n of names) {
    const p = path.join(folder, n);
    try {
      out.push(readMemoryInfo(p));
    } catch (e) {
      out.push({ path: p, name: path.basename(n, MEMORY_EXT), error: (e as Error).message });
    }
  }
  out.sort((a, b) => ('mtime' in b ? b.mtime.getTime() : 0) - ('mtime' in a ? a.mtime.getTime() : 0));
  return out;
}

export { formatBytes } from '../engine/light';

export function formatSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(s < 10 ? 1 : 0)} s`;
  const m = Math.floor(s / 60);
  const r = Math.round(s - m * 60);
  return `${m} min ${r} s`;
}

/** `accuracy 0.875 · f1 0.871` — metric names as the engine writes them, 3 decimals. */
export const QUALITY_METRICS = ['accuracy', 'f1', 'mcc', 'pearson', 'spearman'];

export function formatMetrics(m: object | undefined): string {
  if (!m) return '';
  const known = Object.keys(m).some((k) => QUALITY_METRICS.includes(k));
  return Object.entries(m)
    .filter(([k, v]) => typeof v === 'number' && Number.isFinite(v) && (!known || QUALITY_METRICS.includes(k)))
    .map(([k, v]) => `${k} ${(v as number).toFixed(3)}`)
    .join(' · ');
}
