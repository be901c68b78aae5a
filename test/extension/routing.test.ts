import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseRoutingReport, spartanLayers, spartanLayersOfHeader } from '../../src/extension/routing';

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
