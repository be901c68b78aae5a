/**
 * Parent routing (the paper's Figure 2) for the extension: which layers of a memory hold a SPARTAN memory, and a
 * check of the CLI's JSON before it goes to the benchmark panel. Node-only (no
 * `vscode` import) so the unit tests run it directly.
 */
import { readSafetensorsHeader } from './memoryFiles';
import { spartanLayersOf, type RoutingReport } from '../engine/light';
import type { PanelRouting } from '../protocol/webview';

/** What `spartan routes --json` prints. */
export type { RoutingReport };

/** What the panel stores and draws: the report plus where it came from. */
export type RoutingView = PanelRouting;

/** The encoder layers that hold a SPARTAN memory, from the tensor names of a safetensors header (the engine's names). */
export function spartanLayersOfHeader(header: Record<string, unknown>): number[] {
  return spartanLayersOf(Object.keys(header).filter((k) => k !== '__metadata__'));
}

/** The SPARTAN layers of a memory file (reads the header only). */
export function spartanLayers(file: string): number[] {
  return spartanLayersOfHeader(readSafetensorsHeader(file));
}

function isMatrix(v: unknown, rows: number, cols: number): v is number[][] {
  return (
    Array.isArray(v) &&
    v.length === rows &&
    v.every((r) => Array.isArray(r) && r.length === cols && r.every((x) => typeof x === 'number' && Number.isFinite(x)))
  );
}

/** Checks the CLI's JSON; throws with a message naming what is wrong. */
export function parseRoutingReport(v: unknown): RoutingReport {
  const r = v as Partial<RoutingReport> | null;
  if (!r || typeof r !== 'object') throw new Error('the routing report is not an object');
  const int = (x: unknown, min: number) => typeof x === 'number' && Number.isInteger(x) && x >= min;
  if (!int(r.layer, 0) || !int(r.parents, 1) || !int(r.topK, 1)) throw new Error('the routing report has no layer, parents or topK');
  if (!Array.isArray(r.labels) || r.labels.length === 0 || !r.labels.every((l) => typeof l === 'string'))
    throw new Error('the routing report has no labels');
  const n = r.labels.length;
  if (!Array.isArray(r.tokens) || r.tokens.length !== n || !r.tokens.every((t) => int(t, 0)))
    throw new Error('the routing report has no token counts per label');
  if (!isMatrix(r.counts, n, r.parents!)) throw new Error(`the routing report's counts are not a ${n} × ${r.parents} matrix`);
  if (!isMatrix(r.meanGate, n, r.parents!)) throw new Error(`the routing report's meanGate is not a ${n} × ${r.parents} matrix`);
  return {
    layer: r.layer!,
    parents: r.parents!,
    topK: r.topK!,
    labels: r.labels,
    tokens: r.tokens,
    counts: r.counts,
    meanGate: r.meanGate,
  };
}
