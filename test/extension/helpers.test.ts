import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  validateTaskName,
  defaultTaskName,
  readMemoryInfo,
  listMemories,
  formatBytes,
  formatMetrics,
} from '../../src/extension/memoryFiles';
import { splitRows, selectLines, siblingDevFile } from '../../src/extension/datasets';

test('task names', () => {
  assert.equal(validateTaskName('sst2'), undefined);
  assert.equal(validateTaskName('my-task_v1.2'), undefined);
  assert.ok(validateTaskName(''));
  assert.ok(validateTaskName('../evil'));
  assert.ok(validateTaskName('a/b'));
  assert.ok(validateTaskName('x'.repeat(65)));
  assert.ok(validateTaskName('end.'));
  assert.equal(defaultTaskName('/d/sst2.train.jsonl'), 'sst2');
  assert.equal(defaultTaskName('/d/My Data.jsonl'), 'My-Data');
});

function writeSafetensors(file: string, meta: Record<string, string>) {
  const header = Buffer.from(JSON.stringify({ __metadata__: meta }));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(header.length));
  fs.writeFileSync(file, Buffer.concat([len, header]));
}

test('memory metadata is read from the safetensors header', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-mem-'));
  const meta = {
    format_version: '1',
    method: 'spartan',
    backbone_name: 'roberta-mini',
    backbone_sha256: 'a'.repeat(64),
    tokenizer_hash: 'b'.repeat(64),
    task: 'classification',
    labels: '["neg","pos"]',
    metrics: '{"accuracy":0.9,"note":"x"}',
    hyperparameters: '{"pair":true}',
    created_at: '2026-12-02T00:00:00Z',
  };
  writeSafetensors(path.join(dir, 'a.safetensors'), meta);
  fs.writeFileSync(path.join(dir, 'broken.safetensors'), 'nope');
  // The engine's checks apply: a metadata key the format requires is missing.
  const { tokenizer_hash: _, ...incomplete } = meta;
  writeSafetensors(path.join(dir, 'incomplete.safetensors'), incomplete);
  const info = readMemoryInfo(path.join(dir, 'a.safetensors'));
  assert.equal(info.taskType, 'classification');
  assert.deepEqual(info.labels, ['neg', 'pos']);
  assert.deepEqual(info.metrics, { accuracy: 0.9 });
  assert.equal(info.pair, true);
  assert.equal(info.backboneName, 'roberta-mini');
  assert.throws(() => readMemoryInfo(path.join(dir, 'incomplete.safetensors')), /lacks tokenizer_hash/);
  const all = listMemories(dir);
  assert.equal(all.length, 3);
  assert.equal(all.filter((m) => 'error' in m).length, 2);
  assert.deepEqual(listMemories(path.join(dir, 'none')), []);
});

test('stratified split is reproducible and keeps every label in train', () => {
  const rows = Array.from({ length: 40 }, (_, i) => ({ line: i + 1, label: i % 4 === 0 ? 'a' : 'b' }));
  const s1 = splitRows(rows, 0.1, 7, false);
  const s2 = splitRows(rows, 0.1, 7, false);
  assert.deepEqual(s1, s2);
  assert.equal(s1.dev.length, 4);
  assert.equal(s1.train.length + s1.dev.length, 40);
  assert.ok(s1.train.some((r) => r.label === 'a'));
  assert.ok(s1.dev.some((r) => r.label === 'a'));
  const tiny = splitRows(
    [
      { line: 1, label: 'x' },
      { line: 2, label: 'y' },
    ],
    0.1,
    1,
    false,
  );
  assert.equal(tiny.dev.length, 1);
  assert.equal(splitRows(rows, 0, 1, false).dev.length, 0);
});

test('selectLines keeps the raw source lines', () => {
  assert.equal(selectLines('a\nb\r\nc\n', [1, 3]), 'a\nc\n');
});

test('sibling dev files', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-dev-'));
  fs.writeFileSync(path.join(dir, 'x.jsonl'), '');
  assert.equal(siblingDevFile(path.join(dir, 'x.jsonl')), undefined);
  fs.writeFileSync(path.join(dir, 'x.dev.jsonl'), '');
  assert.equal(siblingDevFile(path.join(dir, 'x.jsonl')), path.join(dir, 'x.dev.jsonl'));
  fs.writeFileSync(path.join(dir, 'y.train.jsonl'), '');
  fs.writeFileSync(path.join(dir, 'y.dev.jsonl'), '');
  assert.equal(siblingDevFile(path.join(dir, 'y.train.jsonl')), path.join(dir, 'y.dev.jsonl'));
});

test('formatting', () => {
  assert.equal(formatBytes(1536), '1.5 KiB');
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(3.5 * 1024 * 1024), '3.5 MiB');
  assert.equal(formatMetrics({ accuracy: 0.875, x: 'y' }), 'accuracy 0.875');
});
