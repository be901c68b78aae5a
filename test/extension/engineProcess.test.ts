// Unit tests of the extension's node-only helpers: `node --import tsx --test test/extension/*.test.ts`
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  runEngine,
  EngineError,
  EngineCancelledError,
  EngineServer,
  EngineServerDiedError,
  LineSplitter,
  parseEventLine,
  parseResult,
  engineArgs,
  classifyInput,
  EngineEvent,
} from '../../src/extension/engineProcess';

const CLI = path.join(__dirname, 'fixtures', 'fake-cli.js');
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-ext-'));

test('LineSplitter joins chunks and splits lines', () => {
  const lines: string[] = [];
  const s = new LineSplitter((l) => lines.push(l));
  s.push('{"a":');
  s.push('1}\r\nsecond\nthi');
  s.push('rd');
  s.flush();
  assert.deepEqual(lines, ['{"a":1}', 'second', 'third']);
});

test('parseEventLine accepts only objects with an event key', () => {
  assert.deepEqual(parseEventLine('{"event":"step","step":1}'), { event: 'step', step: 1 });
  assert.equal(parseEventLine('{"step":1}'), undefined);
  assert.equal(parseEventLine('warning: x'), undefined);
  assert.equal(parseEventLine('{broken'), undefined);
});

test('parseResult takes the whole stdout or its last JSON line', () => {
  assert.deepEqual(parseResult('{"a":1}\n'), { a: 1 });
  assert.deepEqual(parseResult('noise\n{"a":2}\n'), { a: 2 });
  assert.equal(parseResult(''), undefined);
  assert.equal(parseResult('[1,2]'), undefined);
});

test('engineArgs maps typed options to flags and skips undefined ones', () => {
  assert.deepEqual(engineArgs('train', { backbone: 'B', data: 'D', out: 'O', dev: 'V', epochs: 1, lr: 0.001, topK: 8, seed: undefined }), [
    'train',
    '--backbone',
    'B',
    '--data',
    'D',
    '--out',
    'O',
    '--dev',
    'V',
    '--epochs',
    '1',
    '--lr',
    '0.001',
    '--top-k',
    '8',
  ]);
  assert.deepEqual(engineArgs('train', { backbone: 'B', data: 'D', out: 'O', quantize: 'int8' }).slice(-2), ['--quantize', 'int8']);
  // The texts go through stdin, never argv (visible in `ps`; a long one crashes onnxruntime-node at start-up).
  assert.deepEqual(engineArgs('classify', { backbone: 'B', memory: 'M', stdinJson: true }), [
    'classify',
    '--backbone',
    'B',
    '--memory',
    'M',
    '--stdin-json',
  ]);
  // Bare flags, lists, zero and empty values.
  assert.deepEqual(engineArgs('bench', { profiles: ['host', 'rpi4'], quick: true, batch: 8, threads: undefined }), [
    'bench',
    '--profiles',
    'host,rpi4',
    '--quick',
    '--batch',
    '8',
  ]);
  assert.deepEqual(engineArgs('audit', { backbone: 'B', data: 'D', dropout: 0, method: '', epochs: NaN }), [
    'audit',
    '--backbone',
    'B',
    '--data',
    'D',
    '--dropout',
    '0',
  ]);
  assert.deepEqual(engineArgs('routes', { backbone: 'B', memory: 'M', data: 'D', layer: 0, skipInvalid: false, threads: 2 }), [
    'routes',
    '--backbone',
    'B',
    '--memory',
    'M',
    '--data',
    'D',
    '--layer',
    '0',
    '--threads',
    '2',
  ]);
  assert.deepEqual(JSON.parse(classifyInput('-x', 'y')), { text: '-x', text_pair: 'y' });
  assert.deepEqual(JSON.parse(classifyInput('a')), { text: 'a' });
});

test('train: events on stderr, result on stdout, memory written', async () => {
  const dir = tmp();
  const data = path.join(dir, 'd.jsonl');
  fs.writeFileSync(data, '{"text":"a","label":"pos"}\n{"text":"b","label":"neg"}\n');
  const events: EngineEvent[] = [];
  const logs: string[] = [];
  const out = path.join(dir, 'm', 't.safetensors');
  const r = await runEngine<{ memory: string; metrics: Record<string, number> }>({
    cliPath: CLI,
    args: engineArgs('train', { backbone: 'B', data, out, dev: data, epochs: 1 }),
    env: { FAKE_NOISE: '1' },
    onEvent: (e) => events.push(e),
    onLog: (l) => logs.push(l),
  });
  assert.equal(r.result.memory, out);
  assert.ok(fs.existsSync(out));
  assert.equal(events[0].event, 'start');
  assert.equal(events.filter((e) => e.event === 'step').length, 5);
  assert.ok(events.some((e) => e.event === 'eval'));
  assert.deepEqual(logs, ['a plain warning line']);
  assert.ok(r.seconds >= 0);
});

test('user errors reject with the CLI message', async () => {
  await assert.rejects(runEngine({ cliPath: CLI, args: ['train', '--data', '/nope.jsonl', '--out', '/tmp/x'] }), (e: unknown) => {
    assert.ok(e instanceof EngineError);
    assert.equal(e.message, '/nope.jsonl: no such file');
    assert.equal(e.exitCode, 1);
    return true;
  });
});

test('a crash without JSON reports the last stderr line', async () => {
  await assert.rejects(runEngine({ cliPath: CLI, args: ['crash'] }), (e: unknown) => {
    assert.ok(e instanceof EngineError);
    assert.match(e.message, /at foo|something broke/);
    assert.equal(e.exitCode, 3);
    return true;
  });
});

test('a missing executable rejects with EngineError', async () => {
  await assert.rejects(runEngine({ cliPath: CLI, args: ['bench'], nodePath: '/no/such/node' }), EngineError);
});

test('abort kills the child with SIGTERM; the previous memory survives', async () => {
  const dir = tmp();
  const data = path.join(dir, 'd.jsonl');
  fs.writeFileSync(data, '{"text":"a","label":"pos"}\n');
  const out = path.join(dir, 't.safetensors');
  fs.writeFileSync(out, 'previous');
  const ac = new AbortController();
  const t0 = Date.now();
  const p = runEngine({
    cliPath: CLI,
    args: engineArgs('train', { backbone: 'B', data, out }),
    env: { FAKE_STEPS: '1000', FAKE_STEP_MS: '20' },
    signal: ac.signal,
    onEvent: (e) => {
      if (e.event === 'step' && e.step === 2) ac.abort();
    },
  });
  await assert.rejects(p, EngineCancelledError);
  assert.ok(Date.now() - t0 < 5000);
  assert.equal(fs.readFileSync(out, 'utf8'), 'previous');
});

test('abort escalates to SIGKILL when SIGTERM is ignored', async () => {
  const ac = new AbortController();
  const dir = tmp();
  const data = path.join(dir, 'd.jsonl');
  fs.writeFileSync(data, '{"text":"a","label":"pos"}\n');
  const t0 = Date.now();
  const p = runEngine({
    cliPath: CLI,
    args: engineArgs('train', { backbone: 'B', data, out: path.join(dir, 'o.safetensors') }),
    killGraceMs: 300,
    env: { FAKE_STEPS: '1000', FAKE_STEP_MS: '20', FAKE_IGNORE_TERM: '1' },
    signal: ac.signal,
    onEvent: (e) => {
      if (e.event === 'step') ac.abort();
    },
  });
  await assert.rejects(p, EngineCancelledError);
  assert.ok(Date.now() - t0 < 4000);
});

test('an already-aborted signal never starts the child', async () => {
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(runEngine({ cliPath: CLI, args: ['bench'], signal: ac.signal }), EngineCancelledError);
});

test('EngineServer answers requests on one long-lived process and reports request errors', async () => {
  const dir = tmp();
  const mem = path.join(dir, 'm.safetensors');
  fs.writeFileSync(mem, 'x');
  const s = new EngineServer({ cliPath: CLI, idleMs: 60_000 });
  try {
    const a = (await s.request('classify', { memory: mem, text: 'good' })) as unknown as { label: string; pid: number };
    const b = (await s.request('classify', { memory: mem, text: 'bad' })) as unknown as { label: string; pid: number };
    assert.equal(a.label, 'pos');
    assert.equal(b.label, 'neg');
    assert.equal(a.pid, b.pid);
    await assert.rejects(
      s.request('classify', { memory: path.join(dir, 'none'), text: 'x' }),
      (e: unknown) => e instanceof EngineError && /not found/.test(e.message),
    );
    // still alive after a request error
    assert.equal(((await s.request('classify', { memory: mem, text: 'x' })) as unknown as { pid: number }).pid, a.pid);
  } finally {
    s.dispose();
  }
});

test('EngineServer: a crash rejects pending requests and the next request restarts it', async () => {
  const dir = tmp();
  const mem = path.join(dir, 'm.safetensors');
  fs.writeFileSync(mem, 'x');
  const s = new EngineServer({ cliPath: CLI });
  try {
    const first = (await s.request('classify', { memory: mem, text: 'x' })) as unknown as { pid: number };
    await assert.rejects(
      (s as unknown as { request(method: string, params: object): Promise<unknown> }).request('crash', {}),
      EngineServerDiedError,
    );
    const again = (await s.request('classify', { memory: mem, text: 'x' })) as unknown as { pid: number };
    assert.notEqual(again.pid, first.pid);
  } finally {
    s.dispose();
  }
});

test('EngineServer: a CLI without serve fails with EngineServerDiedError (callers fall back)', async () => {
  const s = new EngineServer({ cliPath: CLI, env: { FAKE_NO_SERVE: '1' } });
  await assert.rejects(s.request('classify', { memory: 'x', text: 'y' }), EngineServerDiedError);
  s.dispose();
});

test('EngineServer stops when idle', async () => {
  const dir = tmp();
  const mem = path.join(dir, 'm.safetensors');
  fs.writeFileSync(mem, 'x');
  const s = new EngineServer({ cliPath: CLI, idleMs: 100 });
  await s.request('classify', { memory: mem, text: 'x' });
  assert.equal(s.running, true);
  await new Promise((r) => setTimeout(r, 400));
  assert.equal(s.running, false);
});
