import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SpartanError, FloatTensor } from '../src/engine/types';
import { float16ToFloat32, float32ToFloat16, bfloat16ToFloat32, floatBitsToHalfBits, roundToFloat16 } from '../src/engine/io/float16';
import { encodeSafetensors, parseSafetensors, readSafetensors } from '../src/engine/io/safetensors';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-st-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const MINI = path.join(__dirname, '..', 'models', 'roberta-mini', 'model.safetensors');

function f32bits(x: number): number {
  return new Uint32Array(Float32Array.of(x).buffer)[0];
}

/** Builds a safetensors file by hand, so tests can write headers the encoder never would. */
function rawFile(header: unknown, data: Buffer, headerText?: string): Buffer {
  const h = Buffer.from(headerText ?? JSON.stringify(header), 'utf8');
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  return Buffer.concat([len, h, data]);
}

function assertSpartanError(fn: () => unknown, file: string, pattern: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SpartanError, `expected SpartanError, got ${String(e)}`);
    assert.ok(e.message.includes(file), `message should name ${file}: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('float16: every finite half survives half -> float32 -> half exactly', () => {
  const all = new Uint16Array(65536);
  for (let i = 0; i < 65536; i++) all[i] = i;
  const back = float32ToFloat16(float16ToFloat32(all));
  for (let h = 0; h < 65536; h++) {
    const isNaN = (h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0;
    if (isNaN) assert.ok(Number.isNaN(float16ToFloat32(Uint16Array.of(h))[0]) && (back[h] & 0x7c00) === 0x7c00 && (back[h] & 0x3ff) !== 0);
    else assert.equal(back[h], h, `half 0x${h.toString(16)}`);
  }
});

test('float16: known values, subnormals, overflow, ties to even', () => {
  const f = float16ToFloat32(Uint16Array.of(0x3c00, 0xc000, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x7c00, 0xfc00, 0x8000));
  assert.deepEqual(Array.from(f), [1, -2, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, Infinity, -Infinity, -0]);
  assert.ok(Object.is(f[8], -0));
  const cases: Array<[number, number]> = [
    [1, 0x3c00],
    [1 + 2 ** -11, 0x3c00], // tie between 1 and 1+2^-10: even mantissa (0) wins
    [1 + 3 * 2 ** -11, 0x3c02], // tie between odd 0x3c01 and even 0x3c02
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie rounds up
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00], // tie with the next (non-existent) half: rounds to inf
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-0, 0x8000],
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: 0 is even
    [2 ** -25 * 1.001, 0x0001],
    [3 * 2 ** -25, 0x0002], // tie between 1 and 2 subnormal units
    [2 ** -14 - 2 ** -26, 0x0400], // rounds up out of the subnormals into the smallest normal
    [1e-10, 0x0000],
    [1.401298464324817e-45, 0x0000], // smallest float32 subnormal
  ];
  for (const [x, h] of cases) assert.equal(floatBitsToHalfBits(f32bits(x)), h, `${x} -> 0x${h.toString(16)}`);
  assert.ok(Number.isNaN(roundToFloat16(NaN)));
});

test('float16: random values round to the nearest half (ties to even), checked against neighbours', () => {
  let seed = 12345;
  const rand = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const xs = new Float32Array(20000);
  for (let i = 0; i < xs.length; i++) xs[i] = (rand() < 0.5 ? -1 : 1) * 2 ** (rand() * 44 - 28) * (1 + rand());
  const hs = float32ToFloat16(xs);
  const val = (h: number) => float16ToFloat32(Uint16Array.of(h))[0];
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i];
    const h = hs[i];
    const mag = h & 0x7fff;
    if (mag === 0x7c00) {
      assert.ok(Math.abs(x) >= 65520, `${x} overflowed`);
      continue;
    }
    const err = Math.abs(x - val(h));
    for (const nb of [mag - 1, mag + 1]) {
      if (nb < 0 || nb > 0x7bff) continue;
      const nerr = Math.abs(x - val((h & 0x8000) | nb));
      assert.ok(err < nerr || (err === nerr && (h & 1) === 0), `${x} -> 0x${h.toString(16)} is not the nearest half`);
    }
  }
});

test('bfloat16 converts by bit extension', () => {
  const f = bfloat16ToFloat32(Uint16Array.of(0x3f80, 0xc040, 0x7f80, 0x0000, 0x3e80));
  assert.deepEqual(Array.from(f), [1, -3, Infinity, 0, 0.25]);
});

test('float16 conversion of a roberta-base embedding table is fast', () => {
  const n = 50265 * 768;
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) x[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  const t0 = performance.now();
  const h = float32ToFloat16(x);
  const y = float16ToFloat32(h);
  const ms = performance.now() - t0;
  assert.ok(ms < 2000, `both directions took ${ms.toFixed(0)} ms`);
  assert.ok(Math.abs(y[12345] - x[12345]) < 1e-3);
});

function sampleTensors(): Map<string, FloatTensor> {
  const edge = Float32Array.of(0, -0, 1, -1, 65504, 2 ** -24, 1e-40, 3.4028234663852886e38, Infinity, -Infinity, NaN, 0.1, 1 / 3);
  const m = new Map<string, FloatTensor>();
  m.set('z.last.first', { shape: [13], data: edge });
  m.set('a.matrix', { shape: [2, 3], data: Float32Array.of(1.5, -2.25, 3e-3, 4, 5, 6) });
  m.set('scalar', { shape: [], data: Float32Array.of(7) });
  m.set('empty', { shape: [0, 4], data: new Float32Array(0) });
  return m;
}

test('encode/parse round trip F32 is bit exact, keeps order, metadata, 8-byte aligned header', () => {
  const tensors = sampleTensors();
  const buf = encodeSafetensors(tensors, 'float32', { format: 'pt', note: 'héllo' });
  const headerLen = Number(buf.readBigUInt64LE(0));
  assert.equal(headerLen % 8, 0);
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
  assert.deepEqual(Object.keys(header), ['__metadata__', 'z.last.first', 'a.matrix', 'scalar', 'empty']);
  const file = parseSafetensors(buf, 'mem.safetensors');
  assert.deepEqual(file.metadata, { format: 'pt', note: 'héllo' });
  assert.deepEqual([...file.tensors.keys()], [...tensors.keys()]);
  for (const [name, t] of tensors) {
    const r = file.tensors.get(name)!;
    assert.equal(r.dtype, 'F32');
    assert.deepEqual(r.shape, t.shape);
    assert.deepEqual(
      new Uint32Array(r.data.buffer, r.data.byteOffset, r.data.length),
      new Uint32Array(t.data.buffer, t.data.byteOffset, t.data.length),
    );
  }
  // And through the file-descriptor reader.
  const p = path.join(scratch, 'rt32.safetensors');
  fs.writeFileSync(p, buf);
  const fromDisk = readSafetensors(p);
  assert.deepEqual(Array.from(fromDisk.tensors.get('a.matrix')!.data), Array.from(tensors.get('a.matrix')!.data));
});

test('encode/parse round trip F16 matches half rounding', () => {
  const tensors = sampleTensors();
  const buf = encodeSafetensors(tensors, 'float16', {});
  const p = path.join(scratch, 'rt16.safetensors');
  fs.writeFileSync(p, buf);
  const file = readSafetensors(p);
  assert.deepEqual(file.metadata, {});
  const got = file.tensors.get('z.last.first')!;
  assert.equal(got.dtype, 'F16');
  const expected = [0, -0, 1, -1, 65504, 2 ** -24, 0, Infinity, Infinity, -Infinity, NaN, roundToFloat16(0.1), roundToFloat16(1 / 3)];
  expected.forEach((e, i) => assert.ok(Object.is(got.data[i], e), `index ${i}: ${got.data[i]} vs ${e}`));
  assert.ok(Math.abs(file.tensors.get('a.matrix')!.data[2] - 3e-3) < 3e-3 * 1e-3);
  assert.deepEqual(file.tensors.get('empty')!.shape, [0, 4]);
});

test('unaligned F16 and BF16 data (header length not a multiple of 2) decode correctly', () => {
  const data = Buffer.from(Uint16Array.of(0x3c00, 0xc000, 0x3f80, 0x4000).buffer);
  const header = {
    h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] },
    b: { dtype: 'BF16', shape: [2], data_offsets: [4, 8] },
  };
  const text = JSON.stringify(header) + (JSON.stringify(header).length % 2 === 0 ? ' ' : '');
  const buf = rawFile(null, data, text);
  const file = parseSafetensors(buf, 'odd.safetensors');
  assert.deepEqual(Array.from(file.tensors.get('h')!.data), [1, -2]);
  assert.deepEqual(Array.from(file.tensors.get('b')!.data), [1, 2]);
  const p = path.join(scratch, 'odd.safetensors');
  fs.writeFileSync(p, buf);
  assert.deepEqual(Array.from(readSafetensors(p).tensors.get('h')!.data), [1, -2]);
});

test('reads the shipped F16 roberta-mini checkpoint', () => {
  const file = readSafetensors(MINI);
  assert.equal(file.tensors.size, 74);
  assert.equal(file.metadata.format, 'pt');
  const emb = file.tensors.get('roberta.embeddings.word_embeddings.weight')!;
  assert.equal(emb.dtype, 'F16');
  assert.deepEqual(emb.shape, [50265, 256]);
  assert.equal(emb.data.length, 50265 * 256);
  let sumSq = 0;
  for (let i = 0; i < emb.data.length; i++) {
    assert.ok(Number.isFinite(emb.data[i]));
    sumSq += emb.data[i] * emb.data[i];
  }
  const rms = Math.sqrt(sumSq / emb.data.length);
  assert.ok(rms > 1e-3 && rms < 1, `embedding rms ${rms}`);
  const ln = file.tensors.get('roberta.encoder.layer.0.output.LayerNorm.weight')!;
  const mean = ln.data.reduce((a, b) => a + b, 0) / ln.data.length;
  assert.ok(mean > 0.3 && mean < 2, `LayerNorm weight mean ${mean}`);
  // Same content through the in-memory parser.
  const again = parseSafetensors(fs.readFileSync(MINI), MINI);
  assert.deepEqual(
    again.tensors.get('roberta.embeddings.LayerNorm.bias')!.data,
    file.tensors.get('roberta.embeddings.LayerNorm.bias')!.data,
  );
});

test('a file shorter than 8 bytes is a SpartanError naming the file', () => {
  const p = path.join(scratch, 'short.safetensors');
  fs.writeFileSync(p, Buffer.from([1, 2, 3]));
  assertSpartanError(() => readSafetensors(p), p, /too short/);
  assertSpartanError(() => parseSafetensors(Buffer.alloc(0), 'empty.st'), 'empty.st', /too short/);
});

test('a header length beyond the end of the file is reported as truncated', () => {
  const p = path.join(scratch, 'hdr.safetensors');
  const buf = Buffer.alloc(40);
  buf.writeBigUInt64LE(1000n);
  fs.writeFileSync(p, buf);
  assertSpartanError(() => readSafetensors(p), p, /header length 1000 runs beyond the end of the file/);
  // A Git LFS pointer text file: its first 8 bytes read as an absurd header length.
  fs.writeFileSync(p, 'version https://git-lfs.github.com/spec/v1\noid sha256:abc\nsize 123\n');
  assertSpartanError(() => readSafetensors(p), p, /git lfs pull/);
});

test('a corrupted header is an invalid-JSON SpartanError', () => {
  const good = encodeSafetensors(sampleTensors(), 'float32', { a: 'b' });
  const bad = Buffer.from(good);
  bad[8] = 0x7b; // '{'
  bad[9] = 0x7b; // a second '{' breaks the JSON
  const p = path.join(scratch, 'badjson.safetensors');
  fs.writeFileSync(p, bad);
  assertSpartanError(() => readSafetensors(p), p, /invalid JSON header/);
  assertSpartanError(() => parseSafetensors(rawFile(null, Buffer.alloc(0), '[1,2]'), 'arr.st'), 'arr.st', /not an object/);
  assertSpartanError(
    () => parseSafetensors(rawFile({ __metadata__: { n: 3 } }, Buffer.alloc(0)), 'meta.st'),
    'meta.st',
    /__metadata__ value "n" is not a string/,
  );
});

test('bad offsets: size mismatch, out of range, overlap, invalid', () => {
  const data = Buffer.alloc(16);
  assertSpartanError(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, data), 'size.st'),
    'size.st',
    /tensor "w" data_offsets \[0, 8\] span 8 bytes but dtype F32 with shape \[3\] needs 12 bytes/,
  );
  assertSpartanError(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [4], data_offsets: [8, 24] } }, data), 'range.st'),
    'range.st',
    /truncated or has out-of-range offsets: tensor "w" needs bytes 8\.\.24 .* only 16 data bytes/,
  );
  assertSpartanError(
    () =>
      parseSafetensors(
        rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, data),
        'overlap.st',
      ),
    'overlap.st',
    /"a" and "b" have overlapping data_offsets/,
  );
  assertSpartanError(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [1], data_offsets: [8, 4] } }, data), 'inv.st'),
    'inv.st',
    /tensor "w" has invalid data_offsets/,
  );
  assertSpartanError(
    () => parseSafetensors(rawFile({ w: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, data), 'shape.st'),
    'shape.st',
    /tensor "w" has an invalid shape/,
  );
  // Unordered but disjoint offsets are fine.
  const ok = parseSafetensors(
    rawFile({ b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] }, a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, data),
    'ok.st',
  );
  assert.deepEqual([...ok.tensors.keys()], ['b', 'a']);
});

test('a file cut short in its data section is reported as truncated, naming the tensor', () => {
  const good = encodeSafetensors(sampleTensors(), 'float32', {});
  const p = path.join(scratch, 'trunc.safetensors');
  fs.writeFileSync(p, good.subarray(0, good.length - 10));
  assertSpartanError(
    () => readSafetensors(p),
    p,
    /is truncated .*tensor "scalar" needs bytes 76\.\.80 of the data section but the file holds only 70/,
  );
});

test('unsupported dtypes name the tensor and dtype; include() can skip them', () => {
  const data = Buffer.alloc(24);
  const header = {
    'roberta.embeddings.position_ids': { dtype: 'I64', shape: [1, 2], data_offsets: [0, 16] },
    w: { dtype: 'F32', shape: [2], data_offsets: [16, 24] },
  };
  const p = path.join(scratch, 'i64.safetensors');
  fs.writeFileSync(p, rawFile(header, data));
  assertSpartanError(() => readSafetensors(p), p, /tensor "roberta\.embeddings\.position_ids" has dtype I64, which is not supported/);
  const skipped = readSafetensors(p, { include: (name) => !name.endsWith('position_ids') });
  assert.deepEqual([...skipped.tensors.keys()], ['w']);
  assertSpartanError(
    () => parseSafetensors(rawFile({ q: { dtype: 'Q4', shape: [2], data_offsets: [0, 2] } }, data), 'q.st'),
    'q.st',
    /tensor "q" has unknown dtype "Q4"/,
  );
});

test('missing file is a SpartanError naming it', () => {
  const p = path.join(scratch, 'nope.safetensors');
  assertSpartanError(() => readSafetensors(p), p, /not found/);
});

test('encode rejects data whose length disagrees with the shape', () => {
  const m = new Map<string, FloatTensor>([['x', { shape: [2, 2], data: new Float32Array(3) }]]);
  assert.throws(() => encodeSafetensors(m, 'float32', {}), /tensor "x" has shape \[2, 2\] but 3 values/);
});
