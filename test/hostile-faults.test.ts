/**
 * Hostile input and faults, classes 1, 5, 9 and 10 of issue 9: the serve worker fed anything, the CLI killed with
 * SIGKILL, downloads from servers that hang, never end, send no checksum or find symlinks, and the extension's
 * reads of memory files that are special files or have huge headers. Like hostile.test.ts, every case asserts the
 * exit status (or the answer), a one-line message naming the file or field, no stack trace, and that an earlier
 * memory is byte-identical.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as path from 'node:path';
import { MAX_MEMORY_HEADER_BYTES, MAX_REQUEST_BYTES, MAX_TEXT_BYTES } from '../src/engine/limits';
import { runEngine } from '../src/extension/engineProcess';
import { listMemoriesAsync, newestMemoryFileSync, readMemoryInfo, readMemoryInfoAsync } from '../src/extension/memoryFiles';
import { CLI, TINY, alive, guard, jsonl, labelled, makeMemory, refused, runAsync, scratch, skip, tempFilesOf } from './hostile/harness';

const dir = scratch('faults');
let memory = '';
let pairMemory = '';

test('setup: memories to serve', { skip }, () => {
  memory = makeMemory(dir, 'm');
  pairMemory = makeMemory(dir, 'p', { pair: true });
});

// ---- 1. the serve worker ----

/** Feeds `lines` to one `spartan serve` and returns its answers, in order. */
function serve(lines: string[], extra: string[] = []): { answers: any[]; status: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [CLI, 'serve', '--threads', '1', ...extra], {
    input: lines.join('\n') + '\n',
    encoding: 'utf8',
    timeout: 90_000,
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    answers: r.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l)),
    status: r.status,
    stderr: r.stderr,
  };
}
const classify = (id: unknown, params: unknown) => JSON.stringify({ id, method: 'classify', params });

test('1: every request line gets an answer, whatever it holds, and the worker keeps going', { skip, timeout: 120_000 }, () => {
  const g = guard(memory);
  const ok = (id: number) => classify(id, { backbone: TINY, memory, text: 'hi' });
  const lines = [
    'null',
    ok(1),
    '[1, 2]',
    '42',
    '"classify"',
    '{"id": 2}',
    '{"id": 3, "method": "__proto__"}',
    '{"id": 4, "method": "classify", "params": null}',
    '{"id": 5, "method": "classify", "params": [1]}',
    classify(6, { backbone: TINY, memory: 123, text: 'x' }),
    classify(7, { backbone: TINY, memory, text: 123 }),
    classify(8, { backbone: TINY, memory, text: 'x', textPair: 5 }),
    classify(9, { backbone: TINY, memory, text: 'x', textPair: 'y' }),
    classify(10, { backbone: TINY, memory: pairMemory, text: 'x' }),
    classify(11, { backbone: TINY, memory: dir, text: 'x' }),
    classify(12, { backbone: 7, memory, text: 'x' }),
    classify(13, { backbone: TINY, memory, text: 'y'.repeat(MAX_TEXT_BYTES + 1) }),
    JSON.stringify({ id: { nested: true }, method: 'classify', params: { backbone: TINY, memory, text: 'x' } }),
    '{not json',
    'z'.repeat(MAX_REQUEST_BYTES + 10),
    ok(14),
    classify(15, { backbone: TINY, memory: pairMemory, text: 'x', textPair: 'y' }),
    '{"id": 16, "method": "shutdown"}',
  ];
  const { answers, status, stderr } = serve(lines);
  assert.equal(status, 0, stderr);
  assert.doesNotMatch(stderr, /\n\s+at /);
  assert.equal(answers.length, lines.length, 'one answer per line');
  const byIndex = (i: number) => answers[i];
  const err = (i: number, id: unknown, pattern: RegExp) => {
    assert.equal(byIndex(i).id, id, JSON.stringify(byIndex(i)));
    assert.match(byIndex(i).error, pattern);
    assert.ok(!byIndex(i).error.includes('\n'), 'one line');
  };
  err(0, null, /a request must be a JSON object/);
  assert.ok(['neg', 'pos'].includes(byIndex(1).result.label));
  err(2, null, /must be a JSON object/);
  err(3, null, /must be a JSON object/);
  err(4, null, /must be a JSON object/);
  err(5, 2, /unknown method undefined/);
  err(6, 3, /unknown method "__proto__"/);
  err(7, 4, /params must be a JSON object/);
  err(8, 5, /params must be a JSON object/);
  err(9, 6, /params\.memory must be the path/);
  err(10, 7, /params\.text must be a string/);
  err(11, 8, /params\.textPair must be a string/);
  err(12, 9, /m\.safetensors is a single-text task: params\.textPair/);
  err(13, 10, /p\.safetensors is a text-pair task: give params\.textPair/);
  err(14, 11, /is a directory/);
  err(15, 12, /params\.backbone must be a string/);
  err(16, 13, /params\.text is 1\.0 MiB; the limit is 1\.0 MiB/);
  assert.ok(['neg', 'pos'].includes(byIndex(17).result.label), 'an unusable id is answered as null');
  assert.equal(byIndex(17).id, null);
  err(18, null, /invalid JSON request/);
  err(19, null, /request line is 2\.1 MiB; the limit is 2\.1 MiB/);
  assert.equal(byIndex(20).id, 14);
  assert.ok(['neg', 'pos'].includes(byIndex(20).result.label), 'answered after an oversize line');
  assert.ok(['neg', 'pos'].includes(byIndex(21).result.label));
  assert.deepEqual(byIndex(22), { id: 16, result: { ok: true } });
  g.unchanged();
});

test('1: a request over the time limit is answered with an error; the worker answers the next', { skip, timeout: 120_000 }, () => {
  const { answers, status } = serve(
    [classify(1, { backbone: TINY, memory, text: 'hi' }), '{"id": 2, "method": "shutdown"}'],
    ['--request-timeout', '1'],
  );
  assert.equal(status, 0);
  assert.equal(answers[0].id, 1);
  assert.match(answers[0].error, /request timed out after 0\.001 s/);
  assert.deepEqual(answers[1], { id: 2, result: { ok: true } });
});

test('1: many memories share one backbone and the cache is bounded', { skip, timeout: 120_000 }, () => {
  // Nine memories (one more than the cache holds), then the first again (evicted, loaded anew): every answer
  // arrives and matches the first.
  const files = Array.from({ length: 9 }, (_, i) => {
    const f = path.join(dir, `many-${i}.safetensors`);
    fs.copyFileSync(memory, f);
    return f;
  });
  const lines = [...files, files[0]].map((f, i) => classify(i, { backbone: TINY, memory: f, text: 'same text' }));
  const { answers, status, stderr } = serve([...lines, '{"id": 99, "method": "shutdown"}']);
  assert.equal(status, 0, stderr);
  assert.equal(answers.length, 11);
  for (let i = 0; i < 10; i++) assert.deepEqual(answers[i].result.probabilities, answers[0].result.probabilities, `answer ${i}`);
});

// ---- 5. interruption: the process tree dies together ----

function childrenOf(pid: number): number[] {
  const out = spawnSync('ps', ['-o', 'pid=', '--ppid', String(pid)], { encoding: 'utf8' }).stdout;
  return out
    .split('\n')
    .map((l) => Number(l.trim()))
    .filter((n) => n > 0);
}
test('5: SIGKILL of the spartan process stops the training child; the earlier memory survives', { skip, timeout: 120_000 }, async () => {
  const data = path.join(dir, 'long.jsonl');
  fs.writeFileSync(data, jsonl(labelled(3000)));
  const out = makeMemory(dir, 'keep');
  const g = guard(out);
  const env = { ...process.env };
  delete env.GLIBC_TUNABLES; // the wrapper re-runs the CLI as its child only when this is unset
  const top = spawn(
    process.execPath,
    [CLI, 'train', '--backbone', TINY, '--data', data, '--out', out, '--epochs', '20', '--threads', '1', '--json'],
    { stdio: ['ignore', 'ignore', 'pipe'], env },
  );
  let stderr = '';
  await new Promise<void>((resolve) => {
    top.stderr.on('data', (d) => {
      stderr += d;
      if (stderr.includes('"event":"step"')) resolve();
    });
    top.on('exit', () => resolve());
  });
  const kids = childrenOf(top.pid!);
  assert.equal(kids.length, 1, `the wrapper runs one CLI child: ${stderr.slice(-500)}`);
  top.kill('SIGKILL');
  const t0 = Date.now();
  while (alive(kids[0]) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 100));
  assert.ok(!alive(kids[0]), 'the orphaned child stopped');
  await new Promise((r) => setTimeout(r, 1000)); // nothing writes later either
  g.unchanged();
  assert.deepEqual(tempFilesOf(out), []);
});

test("5: the extension's engine runs are told to stop with the extension host", { skip }, async () => {
  // runEngine's child learns the extension host's pid (exitWithParent in src/engine/runtime/childProcess.ts stops it when that pid is gone).
  const probe = path.join(dir, 'probe.js');
  fs.writeFileSync(probe, 'process.stdout.write(JSON.stringify({ parent: process.env.SPARTAN_PARENT_PID, ppid: process.ppid }) + "\\n");');
  const { result } = await runEngine<{ parent: string; ppid: number }>({ cliPath: probe, args: [] });
  assert.equal(result.parent, String(process.pid));
  assert.equal(result.ppid, process.pid);
});

// ---- 9. downloads ----

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;
async function withServer<T>(handler: Handler, body: (endpoint: string) => Promise<T>): Promise<T> {
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer(handler);
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    return await body(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
}
const download = (endpoint: string, dest: string, extra: string[] = []) =>
  runAsync(['download', '--repo', 'org/model', '--dest', dest, '--json', ...extra], {
    env: { SPARTAN_HF_ENDPOINT: endpoint },
    timeoutMs: 90_000,
  });

test('9: a server that never answers is given up on after the timeout, with a message naming it', { skip, timeout: 120_000 }, async () => {
  await withServer(
    () => undefined /* never answers */,
    async (endpoint) => {
      const r = await download(endpoint, path.join(dir, 'dl-hang'), ['--timeout', '1']);
      refused(r, ['127.0.0.1', 'sent no response within 1 s', 'config.json']);
      assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
    },
  );
});

test('9: a body that stalls half-way times out and keeps the part for a resume', { skip, timeout: 120_000 }, async () => {
  const dest = path.join(dir, 'dl-stall');
  await withServer(
    (_req, res) => {
      res.writeHead(200, { 'content-length': '1000', 'x-linked-etag': `"${'0'.repeat(64)}"` });
      res.write('x'.repeat(100)); // then silence
    },
    async (endpoint) => {
      const r = await download(endpoint, dest, ['--timeout', '1']);
      refused(r, ['sent nothing for 1 s', 'config.json', 'is kept']);
      assert.equal(fs.statSync(path.join(dest, 'config.json.part')).size, 100);
    },
  );
});

test('9: an endless body stops at the size cap; the partial file is removed', { skip, timeout: 120_000 }, async () => {
  const dest = path.join(dir, 'dl-endless');
  let sent = 0;
  await withServer(
    (_req, res) => {
      res.writeHead(200, { 'x-linked-etag': `"${'0'.repeat(64)}"` }); // no length: chunked, forever
      const chunk = Buffer.alloc(64 * 1024, 120);
      const pump = () => {
        while (!res.destroyed && res.write(chunk)) sent += chunk.length;
        if (!res.destroyed) res.once('drain', pump);
      };
      pump();
    },
    async (endpoint) => {
      const r = await download(endpoint, dest, ['--max-file-mb', '2']);
      refused(r, ['more than 2.0 MiB', 'config.json', 'removed']);
      assert.ok(!fs.existsSync(path.join(dest, 'config.json.part')));
      assert.ok(sent < 64 * 1024 * 1024, `the server sent ${sent} bytes`);
    },
  );
  // A body longer than its announced size stops at once too.
  await withServer(
    (_req, res) => {
      res.writeHead(200, { 'x-linked-size': '10', 'x-linked-etag': `"${'0'.repeat(64)}"` });
      res.end('y'.repeat(100_000));
    },
    async (endpoint) => {
      refused(await download(endpoint, dest), ['more than the 10 bytes announced', 'config.json']);
    },
  );
});

test('9: a file without a checksum is not reported as downloaded', { skip, timeout: 120_000 }, async () => {
  const dest = path.join(dir, 'dl-unverified');
  await withServer(
    (_req, res) => res.end('{"corrupted": true}'),
    async (endpoint) => {
      refused(await download(endpoint, dest), ['config.json', 'without a checksum', '--allow-unverified']);
      assert.ok(!fs.existsSync(path.join(dest, 'config.json')));
      assert.ok(!fs.existsSync(path.join(dest, 'config.json.part')));
    },
  );
});

test('9: a symlinked .part is not followed, and --dest naming a file is refused', { skip, timeout: 120_000 }, async () => {
  const dest = path.join(dir, 'dl-link');
  fs.mkdirSync(dest, { recursive: true });
  const victim = path.join(dir, 'victim.txt');
  fs.writeFileSync(victim, 'precious');
  fs.symlinkSync(victim, path.join(dest, 'config.json.part'));
  await withServer(
    (_req, res) => res.end('{}'),
    async (endpoint) => {
      refused(await download(endpoint, dest), ['config.json.part is a symbolic link']);
      assert.equal(fs.readFileSync(victim, 'utf8'), 'precious');
      refused(await download(endpoint, victim), ['victim.txt', 'not a folder']);
      assert.equal(fs.readFileSync(victim, 'utf8'), 'precious');
    },
  );
});

// ---- 10. the extension's reads of memory files ----

test(
  '10: listing a folder with a FIFO, a directory and a huge header neither blocks nor reads the header',
  { skip, timeout: 60_000 },
  async () => {
    const folder = path.join(dir, 'listing');
    fs.mkdirSync(folder, { recursive: true });
    fs.copyFileSync(memory, path.join(folder, 'good.safetensors'));
    execFileSync('mkfifo', [path.join(folder, 'fifo.safetensors')]); // no writer: a plain open would block forever
    fs.mkdirSync(path.join(folder, 'dir.safetensors'));
    const huge = path.join(folder, 'huge.safetensors');
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(MAX_MEMORY_HEADER_BYTES + 1));
    fs.writeFileSync(huge, len);
    fs.truncateSync(huge, 8 + MAX_MEMORY_HEADER_BYTES + 1); // sparse
    const before = process.memoryUsage().rss;
    const list = await listMemoriesAsync(folder);
    const by = Object.fromEntries(list.map((m) => [m.name, m]));
    assert.ok(!('error' in by.good), 'the good memory is listed');
    assert.match((by.fifo as { error: string }).error, /fifo\.safetensors: is a named pipe/);
    assert.match((by.dir as { error: string }).error, /dir\.safetensors: is a directory/);
    assert.match((by.huge as { error: string }).error, /huge\.safetensors: its header is 16\.0 MiB; the limit is 16\.0 MiB/);
    assert.ok(process.memoryUsage().rss - before < 64 * 1024 * 1024, 'the huge header was not read');
    // The synchronous readers (pickers, classify) refuse the same files without blocking.
    assert.throws(() => readMemoryInfo(path.join(folder, 'fifo.safetensors')), /named pipe/);
    await assert.rejects(readMemoryInfoAsync(path.join(folder, 'dir.safetensors')), /is a directory/);
    // The status bar's choice of the newest memory opens no file: a FIFO touched last is skipped.
    fs.utimesSync(path.join(folder, 'good.safetensors'), new Date(2000, 1, 1), new Date(2000, 1, 1));
    assert.equal(newestMemoryFileSync(folder), huge);
  },
);
