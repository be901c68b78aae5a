import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseRoutingReport, routesArgs, spartanLayers, spartanLayersOfHeader } from '../../src/extension/routing';

interface HeatApi {
  heatScale(m: number[][]): { max: number; t: number[][] };
  cellOpacity(t: number): number;
  isHot(t: number): boolean;
  cellText(v: number): string;
  shortLabel(l: string, n: number): string;
  heatLayout(o: { rows: number; cols: number; labels: string[]; width?: number }): {
    W: number;
    H: number;
    left: number;
    right: number;
    top: number;
    cellW: number;
    cellH: number;
    showNumbers: boolean;
    tickEvery: number;
    gridBottom: number;
    legendY: number;
    maxChars: number;
  };
}
// the webview's heat-map helpers are a plain script that also exports itself to CommonJS
// eslint-disable-next-line @typescript-eslint/no-require-imports
const heat: HeatApi = require('../../media/heatmap.js');

/** The shape `spartan routes --json` prints (a 2-label memory, 4 parents, top-2). */
const REPORT = {
  layer: 3,
  parents: 4,
  topK: 2,
  labels: ['neg', 'pos'],
  tokens: [65, 50],
  counts: [
    [0.8, 0.6, 0.4, 0.2],
    [0.1, 0.5, 0.9, 0.5],
  ],
  meanGate: [
    [0.4, 0.3, 0.2, 0.1],
    [0.05, 0.25, 0.45, 0.25],
  ],
};

function writeHeader(file: string, header: Record<string, unknown>) {
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  fs.writeFileSync(file, Buffer.concat([len, h]));
}

/** A layer's three SPARTAN tensors: parent keys, child keys, child values. */
function memoryLayer(i: number, t: object): Record<string, object> {
  const p = `roberta.encoder.layer.${i}`;
  return { [`${p}.spartan_experts.weight`]: t, [`${p}.spartan.weight`]: t, [`${p}.spartan_value.weight`]: t };
}

test('SPARTAN layers come from the tensor names of the memory header', () => {
  const t = { dtype: 'F32', shape: [1], data_offsets: [0, 4] };
  const header = {
    __metadata__: { method: 'spartan' },
    ...memoryLayer(0, t),
    ...memoryLayer(10, t),
    ...memoryLayer(2, t),
    'roberta.encoder.layer.1.spartan_value.weight': t, // values alone do not make a layer
    'roberta.encoder.layer.3.spartan.weight': t, // nor child keys without parent keys
    'classifier.dense.weight': t,
  };
  assert.deepEqual(spartanLayersOfHeader(header), [0, 2, 10]);
  assert.deepEqual(spartanLayersOfHeader({ __metadata__: {}, 'classifier.dense.weight': t }), []);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-routing-'));
  const file = path.join(dir, 'm.safetensors');
  writeHeader(file, header);
  assert.deepEqual(spartanLayers(file), [0, 2, 10]);
  fs.writeFileSync(path.join(dir, 'bad.safetensors'), 'nope');
  assert.throws(() => spartanLayers(path.join(dir, 'bad.safetensors')), /not a safetensors file/);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('routes command line', () => {
  assert.deepEqual(routesArgs('/b', '/m.safetensors', '/d.jsonl', 3), [
    'routes',
    '--backbone',
    '/b',
    '--memory',
    '/m.safetensors',
    '--data',
    '/d.jsonl',
    '--layer',
    '3',
    '--skip-invalid',
  ]);
  assert.deepEqual(routesArgs('embedded', 'm', 'd', 0, 2).slice(-2), ['--threads', '2']);
});

test('the routing report is checked before it reaches the panel', () => {
  assert.deepEqual(parseRoutingReport(REPORT), REPORT);
  assert.deepEqual(parseRoutingReport({ ...REPORT, extra: 1 }), REPORT, 'unknown keys are dropped');
  assert.throws(() => parseRoutingReport(null), /not an object/);
  assert.throws(() => parseRoutingReport({ ...REPORT, layer: -1 }), /layer/);
  assert.throws(() => parseRoutingReport({ ...REPORT, labels: [] }), /no labels/);
  assert.throws(() => parseRoutingReport({ ...REPORT, tokens: [65] }), /token counts/);
  assert.throws(
    () =>
      parseRoutingReport({
        ...REPORT,
        counts: [
          [0.8, 0.6, 0.4],
          [0.1, 0.5, 0.9],
        ],
      }),
    /counts are not a 2 × 4 matrix/,
  );
  assert.throws(
    () =>
      parseRoutingReport({
        ...REPORT,
        meanGate: [
          [0.4, 0.3, 0.2, NaN],
          [0.05, 0.25, 0.45, 0.25],
        ],
      }),
    /meanGate/,
  );
});

test('heat map scale: 0 … the maximum, clean values, an all-zero map stays blank', () => {
  const s = heat.heatScale(REPORT.counts);
  assert.equal(s.max, 0.9);
  assert.equal(s.t[1][2], 1);
  assert.ok(Math.abs(s.t[0][0] - 0.8 / 0.9) < 1e-12);
  assert.ok(s.t.flat().every((v) => v >= 0 && v <= 1));
  const dirty = heat.heatScale([[2, -1, NaN, Infinity]]);
  assert.deepEqual(dirty, { max: 2, t: [[1, 0, 0, 0]] });
  assert.deepEqual(
    heat.heatScale([
      [0, 0],
      [0, 0],
    ]),
    {
      max: 0,
      t: [
        [0, 0],
        [0, 0],
      ],
    },
  );
  // opacity grows with the value, from a faint floor to 1
  assert.equal(heat.cellOpacity(0), 0.04);
  assert.equal(heat.cellOpacity(1), 1);
  assert.equal(heat.cellOpacity(2), 1);
  assert.equal(heat.cellOpacity(NaN), 0.04);
  const ops = [0, 0.1, 0.3, 0.5, 0.9].map((t) => heat.cellOpacity(t));
  assert.ok(ops.every((v, i) => i === 0 || v > ops[i - 1]));
  assert.equal(heat.isHot(0.9), true);
  assert.equal(heat.isHot(0.2), false);
});

test('heat map cell text and labels', () => {
  assert.equal(heat.cellText(0.8307), '.83');
  assert.equal(heat.cellText(1), '1.00');
  assert.equal(heat.cellText(0), '0');
  assert.equal(heat.cellText(0.001), '1e-3');
  assert.equal(heat.cellText(NaN), '0');
  assert.equal(heat.shortLabel('neg', 18), 'neg');
  assert.equal(heat.shortLabel('a-very-long-label-name-indeed', 10), 'a-very-lo…');
  assert.equal(heat.shortLabel('a-very-long-label-name-indeed', 10).length, 10);
});

test('heat map layout: cells fill the width, numbers only where they fit, taller with more labels', () => {
  const l = heat.heatLayout({ rows: 2, cols: 16, labels: ['neg', 'pos'] });
  assert.equal(l.W, 640);
  assert.ok(Math.abs(l.left + 16 * l.cellW + l.right - l.W) < 1e-9, 'the columns span the width');
  assert.equal(l.showNumbers, true);
  assert.equal(l.tickEvery, 1);
  assert.ok(l.cellH >= 16 && l.cellH <= 32);
  assert.ok(l.legendY > l.gridBottom && l.H > l.legendY);
  const tall = heat.heatLayout({ rows: 6, cols: 16, labels: ['0', '1', '2', '3', '4', '5'] });
  assert.ok(tall.H > l.H);
  const wide = heat.heatLayout({ rows: 2, cols: 128, labels: ['neg', 'pos'] });
  assert.equal(wide.showNumbers, false);
  assert.ok(wide.tickEvery > 1);
  assert.ok(wide.cellH >= 16, 'rows stay readable with narrow columns');
  const long = heat.heatLayout({ rows: 1, cols: 16, labels: ['x'.repeat(200)] });
  assert.ok(long.left <= 160, 'long labels are shortened, not given the whole width');
});
