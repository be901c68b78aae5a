import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { SpartanError, TensorMap } from '../src/engine/types';
import { saveMemory, loadMemory, MemoryMetadata, MEMORY_FORMAT_VERSION } from '../src/engine/memory/memoryFile';
import { writeFileAtomic } from '../src/engine/io/atomicWrite';
import { encodeSafetensors } from '../src/engine/io/safetensors';
import { loadBackbone } from '../src/engine/models/backbone';
import { createRng } from '../src/engine/util/random';

const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-mem-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));
const MINI_DIR = path.join(__dirname, '..', 'models', 'roberta-mini');

function memoryTensors(d: number, layers: number, labels: number, seed = 1): TensorMap {
  const rng = createRng(seed);
  const t = (shape: number[]) => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    rng.fillNormal(data, 0, 0.5);
    return { shape, data };
  };
  const m: TensorMap = new Map();
  for (let i = 0; i < layers; i++) {
    m.set(`roberta.encoder.layer.${i}.spartan_experts.weight`, t([16, d]));
    m.set(`roberta.encoder.layer.${i}.spartan.weight`, t([48, d]));
    m.set(`roberta.encoder.layer.${i}.spartan_value.weight`, t([48, d]));
  }
  m.set('classifier.dense.weight', t([d, d]));
  m.set('classifier.dense.bias', t([d]));
  m.set('classifier.out_proj.weight', t([labels, d]));
  m.set('classifier.out_proj.bias', t([labels]));
  return m;
}

function meta(sha: string, name: string, labels = ['negative', 'neutral', 'positive']): MemoryMetadata {
  return {
    formatVersion: MEMORY_FORMAT_VERSION,
    method: 'spartan',
    backbone: { name, sha256: sha },
    tokenizerHash: 'f'.repeat(64),
    task: 'classification',
    labels,
    hyperparameters: { parents: 16, children: 3, topK: 8, temperature: 1.6, lr: 1e-3, nested: { a: [1, 2] } },
    metrics: { accuracy: 0.875, loss: 0.31 },
    createdAt: '2025-01-02T03:04:05.000Z',
  };
}

function assertSpartan(fn: () => unknown, ...patterns: Array<RegExp | string>): string {
  let msg = '';
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof SpartanError, `expected SpartanError, got ${String(e)}`);
    msg = e.message;
    for (const p of patterns) {
      if (typeof p === 'string') assert.ok(e.message.includes(p), `message lacks "${p}": ${e.message}`);
      else assert.match(e.message, p);
    }
    return true;
  });
  return msg;
}

test('float32 round trip keeps metadata and tensors exactly, with the documented metadata keys', async () => {
  const bb = await loadBackbone('synthetic:tiny');
  const tensors = memoryTensors(64, 2, 3);
  const m = meta(bb.weightsSha256, bb.id);
  const p = path.join(scratch, 'sub', 'dir', 'sst.memory.safetensors'); // parent directories are created
  const bytes = saveMemory(p, tensors, m, 'float32');
  assert.equal(bytes, fs.statSync(p).size);
  const loaded = loadMemory(p, bb);
  assert.deepEqual(loaded.metadata, m);
  assert.deepEqual([...loaded.tensors.keys()], [...tensors.keys()]);
  for (const [n, t] of tensors) {
    assert.deepEqual(loaded.tensors.get(n)!.shape, t.shape);
    assert.deepEqual(loaded.tensors.get(n)!.data, t.data, n);
  }
  const headerLen = Number(fs.readFileSync(p).readBigUInt64LE(0));
  const header = JSON.parse(
    fs
      .readFileSync(p)
      .subarray(8, 8 + headerLen)
      .toString('utf8'),
  );
  assert.deepEqual(Object.keys(header.__metadata__).sort(), [
    'backbone_name',
    'backbone_sha256',
    'created_at',
    'format_version',
    'hyperparameters',
    'labels',
    'method',
    'metrics',
    'task',
    'tokenizer_hash',
  ]);
  assert.equal(header.__metadata__.format_version, '1');
  assert.equal(header.__metadata__.labels, '["negative","neutral","positive"]');
  // No temp files are left behind.
  assert.deepEqual(fs.readdirSync(path.dirname(p)), ['sst.memory.safetensors']);
});

test('float16 round trip is within half precision and about half the size', () => {
  const tensors = memoryTensors(64, 2, 1);
  const m = { ...meta('a'.repeat(64), 'x'), task: 'regression' as const, labels: ['score'] };
  const p16 = path.join(scratch, 'reg16.safetensors');
  const p32 = path.join(scratch, 'reg32.safetensors');
  const b16 = saveMemory(p16, tensors, m, 'float16');
  const b32 = saveMemory(p32, tensors, m, 'float32');
  assert.ok(b16 < b32 * 0.6, `${b16} vs ${b32}`);
  const loaded = loadMemory(p16);
  assert.deepEqual(loaded.metadata, m);
  for (const [n, t] of tensors) {
    const got = loaded.tensors.get(n)!.data;
    let maxRel = 0;
    for (let i = 0; i < t.data.length; i++) {
      maxRel = Math.max(maxRel, Math.abs(got[i] - t.data[i]) / Math.max(Math.abs(t.data[i]), 2 ** -14));
    }
    assert.ok(maxRel <= 2 ** -11 + 1e-9, `${n}: max relative error ${maxRel}`);
    assert.ok(maxRel > 0, `${n} should have lost some precision in float16`);
  }
});

test('a memory trained for another backbone is refused with both names and hashes', async () => {
  const tiny0 = await loadBackbone('synthetic:tiny@0');
  const tiny1 = await loadBackbone('synthetic:tiny@1');
  const p = path.join(scratch, 'wrong.safetensors');
  saveMemory(p, memoryTensors(64, 2, 3), meta(tiny0.weightsSha256, tiny0.id), 'float32');
  assertSpartan(
    () => loadMemory(p, tiny1),
    `${p} was trained for backbone "synthetic:tiny@0" (sha256 ${tiny0.weightsSha256.slice(0, 12)}…) but the loaded backbone is ` +
      `"synthetic:tiny@1" (sha256 ${tiny1.weightsSha256.slice(0, 12)}…)`,
  );
  // A different geometry also reports the hidden-size mismatch.
  const mini = await loadBackbone(MINI_DIR);
  assertSpartan(
    () => loadMemory(p, mini),
    '"roberta-mini"',
    'hidden size 256',
    'roberta.encoder.layer.0.spartan_experts.weight has shape [16, 64]',
  );
  // The right backbone loads.
  assert.equal(loadMemory(p, tiny0).metadata.backbone.name, 'synthetic:tiny@0');
});

test('a memory whose tensors do not fit its own backbone is refused', async () => {
  const tiny = await loadBackbone('synthetic:tiny');
  const p = path.join(scratch, 'inconsistent.safetensors');
  const tensors = memoryTensors(64, 3, 2); // layer 2 does not exist in a 2-layer backbone
  saveMemory(p, tensors, meta(tiny.weightsSha256, tiny.id, ['a', 'b']), 'float32');
  assertSpartan(() => loadMemory(p, tiny), p, 'roberta.encoder.layer.2.spartan.weight is for layer 2 but the backbone has 2 layers');
});

test('metadata problems are clear errors naming the file', () => {
  const tensors = memoryTensors(8, 1, 2);
  const good: Record<string, string> = {
    format_version: '1',
    method: 'spartan',
    backbone_name: 'b',
    backbone_sha256: 'c',
    tokenizer_hash: 'd',
    task: 'classification',
    labels: '["a","b"]',
    hyperparameters: '{}',
    metrics: '{}',
    created_at: 'now',
  };
  const write = (name: string, md: Record<string, string>, t: TensorMap = tensors) => {
    const p = path.join(scratch, name);
    fs.writeFileSync(p, encodeSafetensors(t, 'float32', md));
    return p;
  };
  assert.deepEqual(loadMemory(write('ok.st', good)).metadata.labels, ['a', 'b']);
  let p = write('v2.st', { ...good, format_version: '2' });
  assertSpartan(() => loadMemory(p), p, 'format version 2 is not supported');
  p = write('plain.st', {});
  assertSpartan(() => loadMemory(p), p, 'not a Spartan memory file');
  const { metrics, created_at, ...lacking } = good;
  void [metrics, created_at];
  p = write('lacking.st', lacking);
  assertSpartan(() => loadMemory(p), p, 'lacks metrics, created_at');
  p = write('badjson.st', { ...good, labels: '["a",' });
  assertSpartan(() => loadMemory(p), p, 'metadata "labels" is not valid JSON');
  p = write('badlabels.st', { ...good, labels: '{"a":1}' });
  assertSpartan(() => loadMemory(p), p, '"labels" must be a JSON array of strings');
  p = write('badhp.st', { ...good, hyperparameters: '[1]' });
  assertSpartan(() => loadMemory(p), p, '"hyperparameters" must be a JSON object');
  p = write('badtask.st', { ...good, task: 'ner' });
  assertSpartan(() => loadMemory(p), p, 'task is "ner"');
  p = write('count.st', { ...good, labels: '["a","b","c"]' });
  assertSpartan(() => loadMemory(p), p, 'classifier.out_proj.weight has 2 output row(s) but the classification metadata lists 3 label(s)');
  p = write('reg.st', { ...good, task: 'regression' });
  assertSpartan(() => loadMemory(p), p, 'regression needs exactly 1 output');
  assertSpartan(() => loadMemory(path.join(scratch, 'absent.st')), 'absent.st', 'not found');
});

test('saveMemory refuses a head that disagrees with the labels, leaving the previous file', () => {
  const p = path.join(scratch, 'keep.safetensors');
  const first = meta('1'.repeat(64), 'b');
  saveMemory(p, memoryTensors(8, 1, 3), first, 'float32');
  const before = fs.readFileSync(p);
  assertSpartan(() => saveMemory(p, memoryTensors(8, 1, 2), first, 'float32'), p, '2 output row(s)');
  assert.deepEqual(fs.readFileSync(p), before);
});

test('atomic write: a failure after the temp file is written leaves the previous memory intact and no temp file', () => {
  const dir = path.join(scratch, 'atomic');
  const p = path.join(dir, 'm.safetensors');
  const m1 = meta('2'.repeat(64), 'b');
  saveMemory(p, memoryTensors(8, 1, 3, 1), m1, 'float32');
  const before = fs.readFileSync(p);
  let seenTemp = '';
  const replacement = encodeSafetensors(memoryTensors(8, 1, 3, 2), 'float32', {});
  assert.throws(
    () =>
      writeFileAtomic(p, replacement, {
        beforeRename: (tmp) => {
          seenTemp = tmp;
          assert.equal(path.dirname(tmp), dir, 'temp file lives next to the target');
          assert.match(path.basename(tmp), new RegExp(`^\\.m\\.safetensors\\.tmp-${process.pid}-[0-9a-f]+$`));
          assert.deepEqual(fs.readFileSync(tmp), replacement, 'temp file is complete before the rename');
          throw new Error('simulated crash before rename');
        },
      }),
    /simulated crash before rename/,
  );
  assert.ok(seenTemp);
  assert.ok(!fs.existsSync(seenTemp), 'temp file removed');
  assert.deepEqual(fs.readdirSync(dir), ['m.safetensors']);
  assert.deepEqual(fs.readFileSync(p), before);
  assert.deepEqual(loadMemory(p).metadata, m1);

  // Success replaces the content.
  writeFileAtomic(p, 'new');
  assert.equal(fs.readFileSync(p, 'utf8'), 'new');
  assert.deepEqual(fs.readdirSync(dir), ['m.safetensors']);
});

test('atomic write: when the rename itself fails (a directory in the way) the temp file is removed', () => {
  const dir = path.join(scratch, 'atomic2');
  const target = path.join(dir, 'occupied');
  fs.mkdirSync(path.join(target, 'child'), { recursive: true });
  assert.throws(
    () => writeFileAtomic(target, Buffer.from('data')),
    (e: NodeJS.ErrnoException) => typeof e.code === 'string',
  );
  assert.deepEqual(fs.readdirSync(dir), ['occupied']);
  assert.ok(fs.statSync(target).isDirectory());
  assert.deepEqual(fs.readdirSync(target), ['child']);
});

test(
  'atomic write: an unwritable directory fails cleanly and leaves the previous file',
  { skip: process.getuid?.() === 0 ? 'root ignores directory permissions' : false },
  () => {
    const dir = path.join(scratch, 'readonly');
    fs.mkdirSync(dir);
    const p = path.join(dir, 'm.txt');
    fs.writeFileSync(p, 'old');
    fs.chmodSync(dir, 0o555);
    try {
      assert.throws(
        () => writeFileAtomic(p, 'new'),
        (e: NodeJS.ErrnoException) => e.code === 'EACCES' || e.code === 'EPERM',
      );
      assert.equal(fs.readFileSync(p, 'utf8'), 'old');
      assert.deepEqual(fs.readdirSync(dir), ['m.txt']);
    } finally {
      fs.chmodSync(dir, 0o755);
    }
  },
);
