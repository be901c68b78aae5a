/**
 * downloadModel against a local imitation of the Hugging Face hub (127.0.0.1 only, no internet): a "hub" server
 * with the `/{repo}/resolve/{revision}/{file}` layout, which answers the LFS weights with a 302 to a second "cdn"
 * server (another origin, so the token must not follow) carrying X-Linked-Etag = sha256 and X-Linked-Size, and
 * serves plain files itself with ETag = git blob sha1. The cdn honours Range with 206.
 */
import { test, before, after, beforeEach } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, promises as fsp, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { downloadModel, MANIFEST_NAME, resolveUrl } from '../src/engine/hub';
import { SpartanError } from '../src/engine/types';

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitSha1 = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');

const WEIGHTS = randomBytes(200_000);
const FILES: Record<string, Buffer> = {
  'config.json': Buffer.from(JSON.stringify({ model_type: 'roberta', hidden_size: 8 })),
  'model.safetensors': WEIGHTS,
  'vocab.json': Buffer.from(JSON.stringify({ '<s>': 0, '</s>': 2 })),
  'merges.txt': Buffer.from('#version: 0.2\nĠ t\n'),
  'tokenizer.json': Buffer.from(JSON.stringify({ version: '1.0' })),
  // no tokenizer_config.json, like FacebookAI/roberta-base
};
const LFS = new Set(['model.safetensors']);
const COMMIT = 'e2da8e2f811d1448a5b465c236feacd80ffbac7b';

interface Seen {
  server: 'hub' | 'cdn';
  path: string;
  range?: string;
  auth?: string;
}

/** Per-test knobs for misbehaving. */
interface Behaviour {
  missing: Set<string>;
  corruptLfs?: boolean; // cdn serves other bytes than the linked etag says
  dropAfter?: number; // cdn closes the connection after this many bytes, once
  stallAfter?: number; // cdn sends this many bytes and then waits (for the abort test)
  fail503?: Set<string>; // hub answers 503 once for these files
  token?: string; // hub requires this bearer token
  badGitEtag?: string; // hub sends a wrong ETag for this plain file
  ignoreRange?: boolean; // answer Range requests with the whole file (200)
}

let hub: http.Server;
let cdn: http.Server;
let hubUrl = '';
let cdnUrl = '';
let seen: Seen[] = [];
let b: Behaviour;
const tmpRoot = mkdtempSync(join(tmpdir(), 'spartan-hub-'));

function listen(s: http.Server): Promise<string> {
  return new Promise((res) => s.listen(0, '127.0.0.1', () => res(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)));
}

function sendBody(req: http.IncomingMessage, res: http.ServerResponse, body: Buffer, extra: Record<string, string>, cdn: boolean) {
  const range = b.ignoreRange ? undefined : req.headers.range;
  const m = range && /^bytes=(\d+)-$/.exec(range);
  if (m) {
    const start = Number(m[1]);
    if (start >= body.length) {
      res.writeHead(416, { 'content-range': `bytes */${body.length}` }).end();
      return;
    }
    const slice = body.subarray(start);
    res.writeHead(206, {
      ...extra,
      'content-length': String(slice.length),
      'content-range': `bytes ${start}-${body.length - 1}/${body.length}`,
    });
    res.end(slice);
    return;
  }
  res.writeHead(200, { ...extra, 'content-length': String(body.length) });
  if (cdn && b.dropAfter !== undefined) {
    const n = b.dropAfter;
    b.dropAfter = undefined;
    // Send a prefix, give the client time to write it, then cut the connection mid-body.
    res.write(body.subarray(0, n), () => setTimeout(() => res.socket?.destroy(), 100));
    return;
  }
  if (cdn && b.stallAfter !== undefined) {
    const n = b.stallAfter;
    b.stallAfter = undefined;
    res.write(body.subarray(0, n)); // and never finish: the client aborts
    return;
  }
  res.end(body);
}

function hubHandler(req: http.IncomingMessage, res: http.ServerResponse) {
  seen.push({ server: 'hub', path: req.url!, range: req.headers.range, auth: req.headers.authorization });
  const m = /^\/(.+)\/resolve\/([^/]+)\/(.+)$/.exec(req.url!);
  if (!m) return res.writeHead(400).end();
  const file = decodeURIComponent(m[3]);
  if (b.token && req.headers.authorization !== `Bearer ${b.token}`) {
    return res.writeHead(401, { 'x-error-code': 'GatedRepo', 'x-error-message': 'Access to model is restricted.' }).end();
  }
  if (b.fail503?.has(file)) {
    b.fail503.delete(file);
    return res.writeHead(503).end('busy');
  }
  const body = FILES[file];
  if (!body || b.missing.has(file)) return res.writeHead(404, { 'x-error-code': 'EntryNotFound' }).end('Entry not found');
  if (LFS.has(file)) {
    // Like the hub: the facts about an LFS file are on the redirect, the bytes come from another host.
    return res
      .writeHead(302, {
        location: `${cdnUrl}/lfs/${sha256(body)}`,
        'x-linked-etag': `"${sha256(body)}"`,
        'x-linked-size': String(body.length),
        etag: `"${sha256(body)}"`,
        'x-repo-commit': COMMIT,
      })
      .end();
  }
  const etag = b.badGitEtag === file ? '0'.repeat(40) : gitSha1(body);
  sendBody(req, res, body, { etag: `"${etag}"`, 'x-repo-commit': COMMIT }, false);
}

function cdnHandler(req: http.IncomingMessage, res: http.ServerResponse) {
  seen.push({ server: 'cdn', path: req.url!, range: req.headers.range, auth: req.headers.authorization });
  if (req.url !== `/lfs/${sha256(WEIGHTS)}`) return res.writeHead(404).end();
  let body = WEIGHTS;
  if (b.corruptLfs) {
    body = Buffer.from(WEIGHTS);
    body[1234] ^= 0xff;
  }
  sendBody(req, res, body, { etag: '"d41d8cd98f00b204e9800998ecf8427e"' }, true); // an S3-style md5 etag: not the sha256
}

before(async () => {
  hub = http.createServer(hubHandler);
  cdn = http.createServer(cdnHandler);
  // Bounded: no request may hang a test run.
  for (const s of [hub, cdn]) s.setTimeout(5000, (sock) => sock.destroy());
  hubUrl = await listen(hub);
  cdnUrl = await listen(cdn);
});

after(async () => {
  for (const s of [hub, cdn]) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
  rmSync(tmpRoot, { recursive: true, force: true });
});

beforeEach(() => {
  seen = [];
  b = { missing: new Set() };
});

let n = 0;
const freshDest = () => join(tmpRoot, `d${n++}`);
const fileRequests = () => seen.filter((s) => s.server === 'hub' && /\/resolve\//.test(s.path));

test('resolveUrl follows the hub layout', () => {
  assert.equal(
    resolveUrl('https://huggingface.co', 'FacebookAI/roberta-base', 'main', 'model.safetensors'),
    'https://huggingface.co/FacebookAI/roberta-base/resolve/main/model.safetensors',
  );
  assert.equal(resolveUrl('http://h', 'r', 'refs/pr/1', 'onnx/model.onnx'), 'http://h/r/resolve/refs%2Fpr%2F1/onnx/model.onnx');
});

test('full download: files, sha256, redirect, manifest; optional 404 skipped; token stays on the hub', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  b.token = 'hf_secret';
  const progress: { file: string; received: number; total?: number }[] = [];
  const r = await downloadModel({
    repo: 'FacebookAI/roberta-base',
    dest,
    baseUrl: hubUrl,
    token: 'hf_secret',
    onProgress: (e) => progress.push(e),
  });
  assert.deepEqual(
    r.files.map((f) => f.name),
    ['config.json', 'model.safetensors', 'vocab.json', 'merges.txt', 'tokenizer.json'],
  );
  for (const f of r.files) {
    const disk = readFileSync(join(dest, f.name));
    assert.ok(disk.equals(FILES[f.name]), f.name);
    assert.equal(f.bytes, FILES[f.name].length);
    assert.equal(f.sha256, sha256(FILES[f.name]));
    assert.ok(!existsSync(join(dest, `${f.name}.part`)));
  }
  assert.ok(!existsSync(join(dest, 'tokenizer_config.json')));
  // The weights came from the cdn after a redirect, with no Authorization header; the hub got the token.
  const cdnReqs = seen.filter((s) => s.server === 'cdn');
  assert.equal(cdnReqs.length, 1);
  assert.equal(cdnReqs[0].auth, undefined);
  assert.ok(fileRequests().every((s) => s.auth === 'Bearer hf_secret' && s.path.startsWith('/FacebookAI/roberta-base/resolve/main/')));
  const last = progress.filter((p) => p.file === 'model.safetensors').at(-1)!;
  assert.deepEqual(last, { file: 'model.safetensors', received: WEIGHTS.length, total: WEIGHTS.length });
  const m = JSON.parse(readFileSync(join(dest, MANIFEST_NAME), 'utf8'));
  assert.equal(m.repo, 'FacebookAI/roberta-base');
  assert.equal(m.revision, 'main');
  assert.equal(m.complete, true);
  assert.deepEqual(m.skipped, ['tokenizer_config.json']);
  assert.equal(m.files.find((f: { name: string }) => f.name === 'model.safetensors').sha256, sha256(WEIGHTS));
  assert.equal(m.files.find((f: { name: string }) => f.name === 'model.safetensors').commit, COMMIT);
});

test('a complete destination is a no-op: no file requests the second time', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  const first = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl });
  assert.ok(fileRequests().length >= 6);
  seen = [];
  const second = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl });
  assert.equal(seen.length, 0);
  assert.deepEqual(second, first);
  // A deleted file is noticed and fetched again (only that one).
  rmSync(join(dest, 'vocab.json'));
  await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl });
  assert.deepEqual(
    fileRequests().map((s) => s.path),
    ['/roberta-base/resolve/main/vocab.json'],
  );
});

test('SPARTAN_HF_ENDPOINT is used when no baseUrl is given', { timeout: 10_000 }, async () => {
  const saved = process.env.SPARTAN_HF_ENDPOINT;
  process.env.SPARTAN_HF_ENDPOINT = `${hubUrl}/`;
  try {
    const r = await downloadModel({ repo: 'roberta-base', dest: freshDest(), files: ['config.json'] });
    assert.equal(r.files.length, 1);
    assert.equal(fileRequests()[0].path, '/roberta-base/resolve/main/config.json');
  } finally {
    if (saved === undefined) delete process.env.SPARTAN_HF_ENDPOINT;
    else process.env.SPARTAN_HF_ENDPOINT = saved;
  }
});

test('sha256 mismatch on the LFS file is detected; the target is not created', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  b.corruptLfs = true;
  await assert.rejects(
    downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl }),
    (e: Error) =>
      e instanceof SpartanError && /sha256 mismatch for model\.safetensors/.test(e.message) && e.message.includes(sha256(WEIGHTS)),
  );
  assert.ok(!existsSync(join(dest, 'model.safetensors')));
  assert.ok(!existsSync(join(dest, 'model.safetensors.part')), 'a corrupt part is not kept for resuming');
  assert.equal(JSON.parse(readFileSync(join(dest, MANIFEST_NAME), 'utf8')).complete, false);
});

test('git blob etag of a plain file is checked as sha1, not sha256', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  // Correct git etags pass (the full-download test covers that); a wrong one fails.
  b.badGitEtag = 'merges.txt';
  await assert.rejects(
    downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl, files: ['merges.txt'] }),
    /git blob id mismatch for merges\.txt/,
  );
  assert.ok(!existsSync(join(dest, 'merges.txt')));
});

test('a connection dropped midway is resumed with a Range request', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  b.dropAfter = 70_000;
  const r = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl, files: ['model.safetensors'], retryDelayMs: 1 });
  const cdnRanges = seen.filter((s) => s.server === 'cdn').map((s) => s.range);
  assert.deepEqual(cdnRanges, [undefined, 'bytes=70000-']);
  // The Range header also went to the hub's resolve URL (it must survive the redirect).
  assert.deepEqual(
    fileRequests().map((s) => s.range),
    [undefined, 'bytes=70000-'],
  );
  assert.ok(readFileSync(join(dest, 'model.safetensors')).equals(WEIGHTS));
  assert.equal(r.files[0].sha256, sha256(WEIGHTS));
});

test('abort keeps the .part; the next call resumes it with Range and verifies the whole file', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  b.stallAfter = 50_000;
  const ac = new AbortController();
  await assert.rejects(
    downloadModel({
      repo: 'roberta-base',
      dest,
      baseUrl: hubUrl,
      files: ['config.json', 'model.safetensors'],
      signal: ac.signal,
      onProgress: (e) => {
        if (e.file === 'model.safetensors' && e.received >= 50_000) ac.abort();
      },
    }),
    (e: Error) => e instanceof SpartanError && /cancelled/.test(e.message) && /model\.safetensors\.part is kept/.test(e.message),
  );
  const part = join(dest, 'model.safetensors.part');
  assert.equal((await fsp.stat(part)).size, 50_000);
  assert.ok(!existsSync(join(dest, 'model.safetensors')));
  seen = [];
  const r = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl, files: ['config.json', 'model.safetensors'] });
  // config.json finished before the abort and is not fetched again; the weights resume at byte 50000.
  assert.deepEqual(
    fileRequests().map((s) => [s.path, s.range]),
    [['/roberta-base/resolve/main/model.safetensors', 'bytes=50000-']],
  );
  assert.deepEqual(
    seen.filter((s) => s.server === 'cdn').map((s) => s.range),
    ['bytes=50000-'],
  );
  assert.ok(readFileSync(join(dest, 'model.safetensors')).equals(WEIGHTS));
  assert.equal(r.files[1].sha256, sha256(WEIGHTS));
  assert.ok(!existsSync(part));
});

test('a part that is already complete (416) is verified and put in place', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  await fsp.mkdir(dest, { recursive: true });
  writeFileSync(join(dest, 'model.safetensors.part'), WEIGHTS);
  const r = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl, files: ['model.safetensors'] });
  assert.equal(r.files[0].sha256, sha256(WEIGHTS));
  assert.deepEqual(
    seen.filter((s) => s.server === 'cdn').map((s) => s.range),
    [`bytes=${WEIGHTS.length}-`],
  );
  assert.ok(readFileSync(join(dest, 'model.safetensors')).equals(WEIGHTS));
});

test('a 200 answer to a Range request restarts the part from zero', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  await fsp.mkdir(dest, { recursive: true });
  writeFileSync(join(dest, 'model.safetensors.part'), Buffer.alloc(1000, 7)); // wrong bytes: appending would corrupt
  b.ignoreRange = true;
  const r = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl, files: ['model.safetensors'] });
  assert.deepEqual(
    seen.filter((s) => s.server === 'cdn').map((s) => s.range),
    ['bytes=1000-'],
  );
  assert.ok(readFileSync(join(dest, 'model.safetensors')).equals(WEIGHTS));
  assert.equal(r.files[0].bytes, WEIGHTS.length);
});

test('a stale part that does not verify after resuming is discarded and fetched again from zero', { timeout: 10_000 }, async () => {
  const dest = freshDest();
  await fsp.mkdir(dest, { recursive: true });
  writeFileSync(join(dest, 'config.json.part'), 'garbage!'); // e.g. left by an older version of the file
  const r = await downloadModel({ repo: 'roberta-base', dest, baseUrl: hubUrl, files: ['config.json'], retryDelayMs: 1 });
  // First a resume (206 appended to the garbage: the git blob id check fails), then a clean fetch.
  assert.deepEqual(
    fileRequests().map((s) => s.range),
    ['bytes=8-', undefined],
  );
  assert.ok(readFileSync(join(dest, 'config.json')).equals(FILES['config.json']));
  assert.equal(r.files[0].sha256, sha256(FILES['config.json']));
});

test('404 on a required file and 401 on a gated repo give clear errors', { timeout: 10_000 }, async () => {
  b.missing.add('merges.txt');
  await assert.rejects(
    downloadModel({ repo: 'roberta-base', dest: freshDest(), baseUrl: hubUrl }),
    (e: Error) =>
      e instanceof SpartanError &&
      /merges\.txt in roberta-base@main not found/.test(e.message) &&
      e.message.includes(`${hubUrl}/roberta-base/resolve/main/merges.txt`) &&
      /404/.test(e.message),
  );
  b.missing.clear();
  b.token = 'hf_secret';
  await assert.rejects(
    downloadModel({ repo: 'org/private', dest: freshDest(), baseUrl: hubUrl }),
    (e: Error) => e instanceof SpartanError && /HTTP 401/.test(e.message) && /gated or private/.test(e.message) && /token/.test(e.message),
  );
});

test('5xx is retried; an unreachable host says offline', { timeout: 10_000 }, async () => {
  b.fail503 = new Set(['config.json']);
  await downloadModel({ repo: 'roberta-base', dest: freshDest(), baseUrl: hubUrl, files: ['config.json'], retryDelayMs: 1 });
  assert.equal(fileRequests().length, 2);
  // A port that was just closed: nothing listens there.
  const dead = http.createServer();
  const deadUrl = await listen(dead);
  await new Promise((r) => dead.close(r));
  const host = new URL(deadUrl).host;
  await assert.rejects(
    downloadModel({ repo: 'roberta-base', dest: freshDest(), baseUrl: deadUrl, files: ['config.json'], retryDelayMs: 1 }),
    (e: Error) =>
      e instanceof SpartanError &&
      e.message.includes(`could not reach ${host}`) &&
      /offline\?/.test(e.message) &&
      /config\.json/.test(e.message),
  );
});
