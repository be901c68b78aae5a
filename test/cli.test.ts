/**
 * The CLI end to end on the embedded backbone: the main job works, and bad input gives clear messages (file,
 * line, problem) without crashing or touching an earlier memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { repoRoot } from '../src/engine/models/backbone';
import { readSafetensors } from '../src/engine/io/safetensors';
import { loadTokenizer } from '../src/engine/tokenizers/robertaTokenizer';
import * as ort from 'onnxruntime-node';

const ROOT = repoRoot();
const CLI = path.join(ROOT, 'bin', 'spartan.js');
const skip = fs.existsSync(path.join(ROOT, 'dist', 'cli.js')) ? false : 'run `npm run build` first';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

function run(args: string[]): { status: number; stdout: string; stderr: string; json?: any } {
  const r = spawnSync(process.execPath, [CLI, ...args, '--threads', '2'], { encoding: 'utf8' });
  let json: any;
  try {
    json = JSON.parse(r.stdout.trim().split('\n').pop() ?? '');
  } catch {
    json = undefined;
  }
  return { status: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json };
}

function file(name: string, content: string): string {
  const p = path.join(tmp, name);
  fs.writeFileSync(p, content);
  return p;
}

const rows = (n: number, pair = false) =>
  Array.from({ length: n }, (_, i) =>
    JSON.stringify({
      text: `sample text number ${i} ${i % 2 ? 'good' : 'bad'}`,
      label: i % 2 ? 'pos' : 'neg',
      ...(pair ? { text_pair: `other ${i}` } : {}),
    }),
  ).join('\n') + '\n';

test('train, classify, eval and export on the embedded backbone', { skip, timeout: 120_000 }, async () => {
  const train = file('ok.jsonl', rows(24));
  const dev = file('ok.dev.jsonl', rows(8));
  const out = path.join(tmp, 'ok.safetensors');
  const t = run(['train', '--data', train, '--dev', dev, '--out', out, '--epochs', '2', '--batch-size', '8', '--json']);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(t.json.memory, out);
  assert.ok(t.json.bytes > 10_000 && t.json.bytes < 5_000_000, `memory size ${t.json.bytes}`);
  assert.ok(typeof t.json.metrics.accuracy === 'number');
  const meta = readSafetensors(out).metadata;
  assert.deepEqual(JSON.parse(meta.labels), ['neg', 'pos']);
  assert.equal(meta.task, 'classification');
  assert.ok(meta.backbone_sha256.length === 64);

  const c = run(['classify', '--memory', out, '--text', 'sample text number 3 good', '--json']);
  assert.equal(c.status, 0, c.stderr);
  assert.ok(['neg', 'pos'].includes(c.json.label));
  assert.ok(Math.abs(c.json.probabilities.neg + c.json.probabilities.pos - 1) < 1e-6);

  const e = run(['eval', '--memory', out, '--data', dev, '--json']);
  assert.equal(e.status, 0, e.stderr);
  for (const k of ['accuracy', 'f1', 'mcc']) assert.ok(typeof e.json[k] === 'number', k);

  const onnx = path.join(tmp, 'ok.onnx');
  const x = run(['export', '--memory', out, '--onnx', onnx, '--json']);
  assert.equal(x.status, 0, x.stderr);
  assert.ok(fs.statSync(onnx).size > 1_000_000);

  // The exported model alone gives the same probabilities as `classify`.
  const tokenizer = loadTokenizer(path.join(ROOT, 'models', 'roberta-mini'));
  const ids = tokenizer.encode('sample text number 3 good', undefined, 128).ids;
  const session = await ort.InferenceSession.create(onnx);
  const result = await session.run({
    input_ids: new ort.Tensor('int64', BigInt64Array.from(ids.map(BigInt)), [1, ids.length]),
    attention_mask: new ort.Tensor('int64', new BigInt64Array(ids.length).fill(1n), [1, ids.length]),
  });
  const probs = result.probabilities.data as Float32Array;
  assert.ok(Math.abs(probs[0] - c.json.probabilities.neg) < 1e-5, `exported ${probs[0]} vs classify ${c.json.probabilities.neg}`);
  await session.release();
});

test('regression and pair tasks, and --steps 0', { skip, timeout: 120_000 }, () => {
  const reg = file(
    'reg.jsonl',
    Array.from({ length: 12 }, (_, i) => JSON.stringify({ text: `row ${i}`, text_pair: `pair ${i}`, label: i / 3 })).join('\n'),
  );
  const out = path.join(tmp, 'reg.safetensors');
  const t = run(['train', '--data', reg, '--out', out, '--steps', '0', '--json']);
  assert.equal(t.status, 0, t.stderr);
  assert.equal(t.json.steps, 0);
  assert.equal(readSafetensors(out).tensors.get('classifier.out_proj.weight')!.shape[0], 1);
  const e = run(['eval', '--memory', out, '--data', reg, '--json']);
  assert.equal(e.status, 0, e.stderr);
  assert.ok('pearson' in e.json && 'spearman' in e.json);
  const c = run(['classify', '--memory', out, '--text', 'row 1', '--json']);
  assert.equal(c.status, 1);
  assert.match(c.json.error, /text-pair/);
});

test('malformed JSONL rows are reported with file:line and refused', { skip }, () => {
  const bad = file(
    'bad.jsonl',
    ['{"text": "fine", "label": "a"}', '{"text": "broken", "label": ', '{"label": "b"}', '{"text": "ok", "label": "b"}'].join('\n'),
  );
  const out = path.join(tmp, 'bad.safetensors');
  const r = run(['train', '--data', bad, '--out', out, '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, new RegExp(`${bad.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:2: .*JSON`));
  assert.match(r.json.error, /bad\.jsonl:3(:\d+)?: .*"text"/);
  assert.ok(!fs.existsSync(out), 'no memory written');
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
});

test('empty files, unknown dev labels, missing backbones and bad memories give clear errors', { skip }, () => {
  const empty = file('empty.jsonl', '');
  let r = run(['train', '--data', empty, '--out', path.join(tmp, 'x.safetensors'), '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /empty\.jsonl has no rows/);

  const train = file('tr.jsonl', rows(10));
  const dev = file('dv.jsonl', rows(2) + JSON.stringify({ text: 'x', label: 'surprise' }) + '\n');
  r = run(['train', '--data', train, '--dev', dev, '--out', path.join(tmp, 'x.safetensors'), '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /dv\.jsonl:3: .*surprise/);

  r = run(['train', '--data', train, '--backbone', path.join(tmp, 'no-such-model'), '--out', path.join(tmp, 'x.safetensors'), '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /no-such-model.*not found/);

  const dir = path.join(tmp, 'half-model');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(ROOT, 'models', 'roberta-mini', 'config.json'), path.join(dir, 'config.json'));
  r = run(['train', '--data', train, '--backbone', dir, '--out', path.join(tmp, 'x.safetensors'), '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /model\.safetensors/);

  const corrupt = file('corrupt.safetensors', 'not a safetensors file at all');
  r = run(['classify', '--memory', corrupt, '--text', 'hi', '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /corrupt\.safetensors/);

  // A truncated memory: a real one cut in half.
  const good = path.join(tmp, 'good.safetensors');
  assert.equal(run(['train', '--data', train, '--out', good, '--steps', '0']).status, 0);
  const bytes = fs.readFileSync(good);
  const truncated = file('truncated.safetensors', '');
  fs.writeFileSync(truncated, bytes.subarray(0, bytes.length >> 1));
  r = run(['classify', '--memory', truncated, '--text', 'hi', '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /truncated\.safetensors.*truncated/i);

  // A memory made for another backbone is refused.
  r = run(['classify', '--memory', good, '--backbone', 'synthetic:tiny', '--text', 'hi', '--json']);
  assert.equal(r.status, 1);
  assert.match(r.json.error, /roberta-mini/);
});

test('texts over the length limit are truncated and counted', { skip, timeout: 60_000 }, () => {
  const long = file(
    'long.jsonl',
    [
      JSON.stringify({ text: 'word '.repeat(300), label: 'a' }),
      JSON.stringify({ text: 'short', label: 'b' }),
      JSON.stringify({ text: 'tiny', label: 'a' }),
    ].join('\n'),
  );
  const r = run(['train', '--data', long, '--out', path.join(tmp, 'long.safetensors'), '--steps', '1', '--max-length', '32', '--json']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.json.truncated, 1);
});

test('an interrupted run leaves the earlier memory untouched', { skip, timeout: 120_000 }, async () => {
  const train = file('big.jsonl', rows(2000));
  const out = path.join(tmp, 'keep.safetensors');
  assert.equal(run(['train', '--data', train, '--out', out, '--steps', '0']).status, 0);
  const before = fs.readFileSync(out);
  const child = spawn(process.execPath, [CLI, 'train', '--data', train, '--out', out, '--epochs', '5', '--threads', '1', '--json'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  await new Promise<void>((resolve) => {
    child.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('"event":"step"') && !child.killed) child.kill('SIGTERM');
    });
    child.on('exit', () => resolve());
  });
  assert.notEqual(child.exitCode, 0);
  assert.deepEqual(fs.readFileSync(out), before, 'the earlier memory is byte-identical');
  assert.deepEqual(
    fs.readdirSync(tmp).filter((f) => f.includes('.tmp')),
    [],
    'no temp files left',
  );
});

test('serve answers classify requests from a cached model, and reports bad requests', { skip, timeout: 60_000 }, () => {
  const train = file('serve.jsonl', rows(10));
  const memory = path.join(tmp, 'serve.safetensors');
  assert.equal(run(['train', '--data', train, '--out', memory, '--steps', '1']).status, 0);
  const requests = [
    { id: 1, method: 'classify', params: { memory, text: 'good' } },
    { id: 2, method: 'classify', params: { memory, text: 'bad' } },
    { id: 3, method: 'classify', params: { memory: path.join(tmp, 'missing.safetensors'), text: 'x' } },
    { id: 4, method: 'shutdown' },
  ];
  const r = spawnSync(process.execPath, [CLI, 'serve', '--threads', '1'], {
    input: requests.map((q) => JSON.stringify(q)).join('\n') + '\n',
    encoding: 'utf8',
  });
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.deepEqual(
    answers.map((a) => a.id),
    [1, 2, 3, 4],
  );
  assert.ok(['neg', 'pos'].includes(answers[0].result.label));
  assert.ok(['neg', 'pos'].includes(answers[1].result.label));
  assert.match(answers[2].error, /missing\.safetensors: memory file not found/);
});
