/**
 * Hostile input, classes 2–4, 6–8 and 11 of issue 9: sizes and lengths, long command lines, labels named like
 * Object.prototype's keys, output paths, damaged memory files, rows that do not match their task, benchmark flags.
 * Every case runs the CLI as a user would (synthetic:tiny backbone) and asserts the exit status, one message line
 * naming the file or field, no stack trace, and that an earlier memory is byte-identical. The serve worker, kills
 * and downloads are in hostile-faults.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readSafetensors } from '../src/engine/io/safetensors';
import { inferTask, parseJsonlText } from '../src/engine/data/jsonl';
import { multiLabelMetrics, perLabelScores } from '../src/engine/training/errorAnalysis';
import { MAX_ARGV_TEXT_BYTES, MAX_JSONL_BYTES, MAX_TEXT_BYTES } from '../src/engine/limits';
import {
  TINY,
  deadPid,
  guard,
  jsonl,
  labelled,
  makeMemory,
  refused,
  result,
  run,
  scratch,
  skip,
  tamper,
  tempFilesOf,
} from './hostile/harness';

const dir = scratch('cli');
const write = (name: string, content: string | Buffer): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, content);
  return p;
};
const trainData = write('train.jsonl', jsonl(labelled(8)));
// One earlier memory every case may try to overwrite or read; checked byte-identical after each.
let earlier = '';
let pairMemory = '';
const train = (args: string[]) => run(['train', '--backbone', TINY, '--data', trainData, '--steps', '0', '--json', ...args]);
const classify = (memory: string, args: string[], input?: string) =>
  run(['classify', '--backbone', TINY, '--memory', memory, '--json', ...args], { input });

test('setup: an earlier memory', { skip }, () => {
  earlier = makeMemory(dir, 'earlier');
  pairMemory = makeMemory(dir, 'pair', { pair: true });
});

// ---- 2. size limits, checked before work ----

test('2: a text over the size limit is refused at its line, before tokenizing', { skip }, () => {
  const g = guard(earlier);
  const big = write('big-row.jsonl', jsonl([...labelled(6), { text: 'x '.repeat(MAX_TEXT_BYTES), label: 'pos' }]));
  const r = run(['train', '--backbone', TINY, '--data', big, '--out', earlier, '--steps', '1', '--json']);
  // A row problem: the first line names the file, each listed problem names file:line and the field.
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`big-row\\.jsonl:7:\\d+: "text" is 2\\.0 MiB; the limit is 1\\.0 MiB`));
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  g.unchanged();
});

test('2: a huge text under the limit costs only its first tokens (classify stays fast)', { skip }, () => {
  const g = guard(earlier);
  const text = write('long.txt', 'good movie '.repeat(90_000)); // 990 KB
  const r = classify(earlier, ['--text-file', text]);
  const out = result(r);
  assert.ok(['neg', 'pos'].includes(out.label));
  assert.ok(r.ms < 30_000, `took ${r.ms} ms`);
  g.unchanged();
});

test('2: --max-length beyond the backbone positions is refused before training', { skip }, () => {
  const g = guard(earlier);
  const r = train(['--out', earlier, '--max-length', '1000']);
  refused(r, ['--max-length is 1000', 'at most 512']);
  assert.doesNotMatch(r.stderr, /"event":"start"/);
  g.unchanged();
  // 512 is the most that fits; 513 does not.
  refused(train(['--out', earlier, '--max-length', '513']), ['--max-length is 513']);
  g.unchanged();
});

test('2: a memory claiming a max length the backbone has no positions for is refused at load', { skip }, () => {
  const bad = tamper(earlier, path.join(dir, 'maxlen.safetensors'), {
    metadata: (m) => (m.hyperparameters = JSON.stringify({ ...JSON.parse(m.hyperparameters), maxLength: 1000 })),
  });
  const g = guard(bad);
  refused(classify(bad, ['--text', 'hi']), ['maxlen.safetensors', 'max length is 1000']);
  refused(run(['eval', '--backbone', TINY, '--memory', bad, '--data', trainData, '--json']), ['maxlen.safetensors']);
  g.unchanged();
});

test('2: a JSONL file over the size limit is refused by its size, without reading it', { skip }, () => {
  const huge = path.join(dir, 'huge.jsonl');
  fs.writeFileSync(huge, '');
  fs.truncateSync(huge, MAX_JSONL_BYTES + 1); // sparse: costs no disk
  const g = guard(earlier);
  refused(run(['train', '--backbone', TINY, '--data', huge, '--out', earlier, '--json']), ['huge.jsonl', 'the limit is 512.0 MiB']);
  g.unchanged();
});

test('2: --text-file over the size limit, and a text file that is a directory', { skip }, () => {
  const big = write('big.txt', 'a'.repeat(MAX_TEXT_BYTES + 10));
  refused(classify(earlier, ['--text-file', big]), ['big.txt', 'the limit is 1.0 MiB']);
  refused(classify(earlier, ['--text-file', dir]), [dir, 'is a directory']);
  refused(classify(earlier, ['--text-file', '-'], 'b'.repeat(MAX_TEXT_BYTES + 10)), ['--text-file -', 'limit']);
});

test('2: absurd --threads and a memory geometry that cannot fit are refused before work', { skip }, () => {
  const g = guard(earlier);
  refused(run(['train', '--backbone', TINY, '--data', trainData, '--out', earlier, '--json', '--threads', '100000'], { threads: false }), [
    '--threads 100000 is more than 256',
  ]);
  refused(train(['--out', earlier, '--parents', '100000', '--children', '100']), [
    '--parents 100000',
    '--children 100',
    'the limit is 100,000,000',
  ]);
  refused(run(['classify', '--backbone', TINY, '--memory', earlier, '--text', 'x', '--threads', '5000', '--json'], { threads: false }), [
    '--threads 5000',
  ]);
  g.unchanged();
});

// ---- 3. texts on the command line ----

test('3: a long --text is refused with a pointer to --text-file, not a crash', { skip }, () => {
  const g = guard(earlier);
  const r = classify(earlier, ['--text', 'good movie '.repeat(3500)]);
  refused(r, ['--text is 37.6 KiB', '--text-file']);
  refused(classify(pairMemory, ['--text', 'a', '--text-pair', 'b'.repeat(MAX_ARGV_TEXT_BYTES + 1)]), [
    '--text-pair is',
    '--text-pair-file',
  ]);
  g.unchanged();
});

test('3: the same long text through stdin or a file classifies', { skip }, () => {
  const text = 'good movie '.repeat(3500);
  const viaStdin = result(classify(earlier, ['--text-file', '-'], text));
  const viaJson = result(classify(earlier, ['--stdin-json'], JSON.stringify({ text })));
  assert.deepEqual(viaJson.probabilities, viaStdin.probabilities);
  const pair = result(classify(pairMemory, ['--stdin-json'], JSON.stringify({ text, text_pair: 'fine' })));
  assert.ok(['neg', 'pos'].includes(pair.label));
});

test('3: --stdin-json that is not an object with string fields is refused naming the field', { skip }, () => {
  refused(classify(earlier, ['--stdin-json'], '{"text": '), ['--stdin-json', 'not valid JSON']);
  refused(classify(earlier, ['--stdin-json'], '[1]'), ['--stdin-json', 'one JSON object']);
  refused(classify(earlier, ['--stdin-json'], '{"text": 5}'), ['--stdin-json', '"text" must be a string']);
  refused(classify(earlier, ['--stdin-json'], '{"text": "a", "text_pair": null}'), ['"text_pair" must be a string']);
  refused(classify(earlier, ['--stdin-json', '--text', 'a']), ['only one of --text']);
});

// ---- 4. labels named like Object.prototype's keys ----

test('4: labels "__proto__", "constructor", "toString" are labels like any other', { skip }, () => {
  for (const names of [
    ['__proto__', 'normal'],
    ['constructor', 'toString'],
    ['hasOwnProperty', 'valueOf'],
  ] as [string, string][]) {
    const task = inferTask(parseJsonlText(jsonl(labelled(6, names)), 'f.jsonl').rows, 'f.jsonl');
    assert.deepEqual(task.labels, [...names].sort());
    assert.deepEqual(Object.entries(task.labelCounts).sort(), names.map((n) => [n, 3]).sort());
    // Per-label scores (eval's report) keep such labels as keys too.
    const perLabel = perLabelScores({
      labels: names,
      matrix: [
        [2, 1],
        [0, 3],
      ],
    });
    assert.deepEqual(Object.keys(perLabel).sort(), [...names].sort());
    assert.equal(perLabel[names[0]].support, 3);
    assert.deepEqual(Object.keys(multiLabelMetrics([[true, false]], [[true, true]], names).per_label).sort(), [...names].sort());
  }
  const data = write('proto.jsonl', jsonl(labelled(8, ['__proto__', 'normal'])));
  const out = path.join(dir, 'proto.safetensors');
  const t = result(run(['train', '--backbone', TINY, '--data', data, '--out', out, '--steps', '1', '--json']));
  assert.deepEqual(t.labels, ['__proto__', 'normal']);
  assert.deepEqual(JSON.parse(readSafetensors(out).metadata.labels), ['__proto__', 'normal']);
  const c = result(classify(out, ['--text', 'hi']));
  assert.deepEqual(Object.keys(c.probabilities).sort(), ['__proto__', 'normal']);
  assert.ok(Math.abs(c.probabilities.__proto__ + c.probabilities.normal - 1) < 1e-6);
});

test('4: a dev label "constructor" absent from training is reported at its line', { skip }, () => {
  const g = guard(earlier);
  const dev = write(
    'dev-proto.jsonl',
    jsonl([
      { text: 'a', label: 'neg' },
      { text: 'b', label: 'constructor' },
    ]),
  );
  const r = train(['--out', earlier, '--dev', dev]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /dev-proto\.jsonl:2: label "constructor" does not occur in the training file/);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  g.unchanged();
});

// ---- 6. output paths, checked before the work ----

test('6: --out that cannot be written is refused before training, naming --out', { skip }, () => {
  const g = guard(earlier);
  const sub = path.join(dir, 'a-folder');
  fs.mkdirSync(sub, { recursive: true });
  const aFile = write('plain.txt', 'x');
  const cases: [string, (string | RegExp)[]][] = [
    [sub, ['--out', 'a-folder', 'is a directory']],
    ['', ['--out', 'empty']],
    [`${sub}/`, ['--out', 'ends with a slash']],
    [path.join(dir, 'n'.repeat(250)), ['--out', 'too long']],
    [path.join(aFile, 'm.safetensors'), ['--out', 'plain.txt']],
    ['/dev/null', ['--out /dev/null', 'device']],
  ];
  for (const [out, names] of cases) {
    const r = train(['--out', out]);
    refused(r, names);
    assert.doesNotMatch(r.stderr, /"event":"start"/, 'refused before training');
  }
  assert.ok(fs.statSync('/dev/null').isCharacterDevice(), '/dev/null is still a device');
  assert.ok(fs.statSync(sub).isDirectory());
  g.unchanged();
});

test('6: a FIFO as --out is refused (not replaced by a regular file)', { skip }, () => {
  const fifo = path.join(dir, 'out.fifo');
  execFileSync('mkfifo', [fifo]);
  refused(train(['--out', fifo]), ['out.fifo', 'named pipe']);
  assert.ok(fs.statSync(fifo).isFIFO());
});

test(
  '6: a read-only folder is refused before training',
  { skip: skip || (process.getuid?.() === 0 ? 'root ignores folder permissions' : false) },
  () => {
    const ro = path.join(dir, 'ro');
    fs.mkdirSync(ro, { recursive: true });
    fs.chmodSync(ro, 0o555);
    try {
      refused(train(['--out', path.join(ro, 'm.safetensors')]), ['--out', 'permission denied']);
    } finally {
      fs.chmodSync(ro, 0o755);
    }
  },
);

test('6: a rewrite keeps the file mode; a stale temp file of a dead writer is removed, a live one kept', { skip }, () => {
  const out = makeMemory(dir, 'moded');
  fs.chmodSync(out, 0o600);
  const stale = path.join(dir, `.moded.safetensors.tmp-${deadPid()}-0123456789ab`);
  const live = path.join(dir, `.moded.safetensors.tmp-${process.pid}-ba9876543210`);
  fs.writeFileSync(stale, Buffer.alloc(1000));
  fs.writeFileSync(live, 'x');
  result(train(['--out', out]));
  assert.equal(fs.statSync(out).mode & 0o777, 0o600);
  assert.ok(!fs.existsSync(stale), 'the stale temp file is removed');
  assert.ok(fs.existsSync(live), "a live writer's temp file is kept");
  fs.rmSync(live);
  assert.deepEqual(tempFilesOf(out), []);
});

test('6: export and bench outputs are checked before their work', { skip }, () => {
  const g = guard(earlier);
  const r = run(['export', '--backbone', TINY, '--memory', earlier, '--onnx', dir, '--json']);
  refused(r, ['--onnx', 'is a directory']);
  refused(run(['bench', '--backbone', TINY, '--profiles', 'host', '--methods', 'head', '--quick', '--csv', `${dir}/`, '--json']), [
    '--csv',
    'slash',
  ]);
  g.unchanged();
});

test('6: an output that is one of the inputs is refused (the data or the memory would be replaced)', { skip }, () => {
  const g = guard(earlier);
  const data = guard(trainData);
  refused(train(['--out', trainData]), ['--out', 'same file as --data']);
  const dev = path.join(dir, 'dev-as-out.jsonl');
  fs.copyFileSync(trainData, dev);
  refused(train(['--out', dev, '--dev', dev]), ['same file as --dev']);
  refused(run(['export', '--backbone', TINY, '--memory', earlier, '--onnx', earlier, '--json']), ['--onnx', 'same file as --memory']);
  data.unchanged();
  g.unchanged();
});

// ---- 7. memory files: method, geometry, finiteness ----

test('7: damaged or hand-edited memories are refused naming the file and the problem', { skip }, () => {
  const hp = (edit: Record<string, unknown>) => (m: Record<string, string>) =>
    (m.hyperparameters = JSON.stringify({ ...JSON.parse(m.hyperparameters), ...edit }));
  const cases: [string, Parameters<typeof tamper>[2], (string | RegExp)[]][] = [
    ['method', { metadata: (m) => (m.method = 'lora') }, ['metadata method is "lora"']],
    ['parents', { metadata: hp({ parents: 8 }) }, ['spartan_experts.weight has shape [16, 64]', 'needs [8, 64]']],
    ['topk', { metadata: hp({ topK: 40 }) }, ['top-k (40) cannot exceed']],
    ['string-geometry', { metadata: hp({ children: '3' }) }, ['"children" must be a finite number']],
    ['nan', { tensors: (t) => (t.get('classifier.out_proj.bias')!.data[1] = NaN) }, ['classifier.out_proj.bias holds a non-finite value']],
    ['inf', { tensors: (t) => (t.get('roberta.encoder.layer.1.spartan.weight')!.data[7] = -Infinity) }, ['non-finite']],
    ['dup-labels', { metadata: (m) => (m.labels = '["neg","neg"]') }, ['lists "neg" twice']],
    [
      'extra-tensor',
      { tensors: (t) => t.set('classifier.extra.weight', { shape: [2], data: new Float32Array(2) }) },
      ['classifier.extra.weight does not belong'],
    ],
    ['missing-tensor', { tensors: (t) => t.delete('roberta.encoder.layer.0.spartan_value.weight') }, ['spartan_value.weight is missing']],
  ];
  // The first cases through `classify` (exit status, message); all of them through one serve worker, which loads
  // memories the same way (TaskModel.load) and answers each with a one-line error.
  const bads = cases.map(([name, edit]) => tamper(earlier, path.join(dir, `bad-${name}.safetensors`), edit));
  const guards = bads.map(guard);
  for (let i = 0; i < 3; i++) refused(classify(bads[i], ['--text', 'hi']), [`bad-${cases[i][0]}.safetensors`, ...cases[i][2]]);
  const requests = bads.map((memory, id) => JSON.stringify({ id, method: 'classify', params: { backbone: TINY, memory, text: 'hi' } }));
  const r = run(['serve'], { input: requests.join('\n') + '\n' });
  assert.equal(r.status, 0, r.stderr);
  const answers = r.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(answers.length, cases.length);
  cases.forEach(([name, , names], i) => {
    assert.equal(answers[i].id, i);
    assert.ok(!answers[i].error.includes('\n'), 'one line');
    for (const n of [`bad-${name}.safetensors`, ...names])
      assert.ok(answers[i].error.includes(n), `${name}: ${answers[i].error} does not name ${n}`);
  });
  guards.forEach((g) => g.unchanged());
});

test('7: a stored max length too small to hold a text, and a backbone whose config.json is a FIFO', { skip }, () => {
  const bad = tamper(earlier, path.join(dir, 'maxlen2.safetensors'), {
    metadata: (m) => (m.hyperparameters = JSON.stringify({ ...JSON.parse(m.hyperparameters), maxLength: 2 })),
  });
  refused(classify(bad, ['--text', 'hi']), ['maxlen2.safetensors', 'max length is 2']);
  const model = path.join(dir, 'fifo-model');
  fs.mkdirSync(model, { recursive: true });
  execFileSync('mkfifo', [path.join(model, 'config.json')]);
  const r = run(['classify', '--backbone', model, '--memory', earlier, '--text', 'hi', '--json'], { timeoutMs: 30_000 });
  refused(r, ['config.json', 'named pipe']);
});

test('7: --memory naming a directory or a FIFO is refused at once', { skip }, () => {
  refused(classify(dir, ['--text', 'hi']), [dir, 'is a directory']);
  const fifo = path.join(dir, 'memory.fifo');
  execFileSync('mkfifo', [fifo]);
  const r = classify(fifo, ['--text', 'hi']);
  refused(r, ['memory.fifo', 'named pipe']);
  assert.ok(r.ms < 30_000);
});

test('7: a bad --init memory is refused before training; the earlier memory survives', { skip }, () => {
  const g = guard(earlier);
  const bad = tamper(earlier, path.join(dir, 'bad-init.safetensors'), { tensors: (t) => (t.get('classifier.dense.bias')!.data[0] = NaN) });
  refused(train(['--out', earlier, '--init', bad]), ['bad-init.safetensors', 'non-finite']);
  g.unchanged();
});

// ---- 8. rows and tasks cross-checked ----

test('8: classify --data needs no labels; invalid rows are refused (or skipped and reported with --skip-invalid)', { skip }, () => {
  const unlabelled = write('unlabelled.jsonl', jsonl([{ text: 'good' }, { text: 'bad' }, { text: 'fine', label: 'pos' }]));
  const out = result(classify(earlier, ['--data', unlabelled]));
  assert.deepEqual(
    out.predictions.map((p: { line: number }) => p.line),
    [1, 2, 3],
  );

  const broken = write('broken.jsonl', '{"text": "good"}\n{"text": 42}\nnot json\n');
  const human = run(['classify', '--backbone', TINY, '--memory', earlier, '--data', broken]);
  assert.equal(human.status, 1, 'invalid rows are not skipped silently');
  assert.match(human.stderr, /broken\.jsonl:2(:\d+)?: "text" must be a non-empty string/);
  assert.match(human.stderr, /broken\.jsonl:3(:\d+)?: invalid JSON/);
  assert.doesNotMatch(human.stderr, /\n\s+at /);
  const skipped = run(['classify', '--backbone', TINY, '--memory', earlier, '--data', broken, '--skip-invalid']);
  assert.equal(skipped.status, 0, skipped.stderr);
  assert.match(skipped.stderr, /broken\.jsonl:2/);
  assert.match(skipped.stdout, /broken\.jsonl:1\t(neg|pos)/);
});

test('8: pair and single-text rows, files and memories are not mixed', { skip }, () => {
  const g = guard(earlier);
  const pairDev = write('pair-dev.jsonl', jsonl(labelled(4, ['neg', 'pos'], true)));
  refused(train(['--out', earlier, '--dev', pairDev]), ['pair-dev.jsonl', 'text pairs', 'train.jsonl']);
  refused(classify(earlier, ['--text', 'a', '--text-pair', 'b']), ['earlier.safetensors is a single-text task', '--text-pair']);
  refused(classify(pairMemory, ['--text', 'a']), ['pair.safetensors is a text-pair task']);
  refused(classify(earlier, ['--data', pairDev]), ['pair-dev.jsonl', 'text pairs', 'single-text']);
  refused(classify(pairMemory, ['--data', trainData]), ['train.jsonl', 'single texts', 'text-pair']);
  g.unchanged();
});

test('8: eval of pair rows with a single-text memory is refused naming the file', { skip }, () => {
  const pairRows = write('pair-eval.jsonl', jsonl(labelled(4, ['neg', 'pos'], true)));
  refused(run(['eval', '--backbone', TINY, '--memory', earlier, '--data', pairRows, '--json']), [
    'pair-eval.jsonl',
    'text pairs',
    'single-text',
  ]);
  refused(run(['eval', '--backbone', TINY, '--memory', pairMemory, '--data', trainData, '--json']), [
    'train.jsonl',
    'single texts',
    'text-pair',
  ]);
});

test('8: invalid UTF-8 is reported at its line, not trained on as U+FFFD', { skip }, () => {
  const g = guard(earlier);
  const rows = Buffer.from(jsonl(labelled(6)));
  const bad = Buffer.concat([rows, Buffer.from('{"text": "caf'), Buffer.from([0xc3, 0x28]), Buffer.from('", "label": "pos"}\n')]);
  const file = write('latin.jsonl', bad);
  const r = run(['train', '--backbone', TINY, '--data', file, '--out', earlier, '--steps', '1', '--json']);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /latin\.jsonl:7:14: invalid UTF-8 \(byte 14/);
  g.unchanged();
  // A real U+FFFD in valid UTF-8 is text like any other.
  const ok = write('fffd.jsonl', jsonl([...labelled(6), { text: 'caf\uFFFD', label: 'pos' }]));
  result(run(['train', '--backbone', TINY, '--data', ok, '--out', path.join(dir, 'fffd.safetensors'), '--steps', '0', '--json']));
  // With --skip-invalid the other rows train.
  const skipped = result(
    run([
      'train',
      '--backbone',
      TINY,
      '--data',
      file,
      '--out',
      path.join(dir, 'latin.safetensors'),
      '--steps',
      '0',
      '--skip-invalid',
      '--json',
    ]),
  );
  assert.equal(skipped.labels.length, 2);
});

// ---- 11. benchmarks ----

test('11: bench refuses impossible flags before starting workers', { skip }, () => {
  refused(run(['bench', '--backbone', TINY, '--profiles', 'custom', '--cores', '1000', '--json']), ['--cores 1000', 'CPU']);
  refused(run(['bench', '--backbone', TINY, '--profiles', 'host', '--seq', '600', '--json']), ['--seq is 600', 'at most 512']);
});

test('11: a bench whose workers fail exits non-zero', { skip, timeout: 120_000 }, () => {
  // 64 MB of address space (prlimit) is far too little for a Node worker: every measurement fails.
  const r = run(
    [
      'bench',
      '--backbone',
      TINY,
      '--profiles',
      'custom',
      '--cores',
      '1',
      '--memory-mb',
      '64',
      '--no-cgroups',
      '--methods',
      'head',
      '--quick',
      '--json',
    ],
    { timeoutMs: 110_000 },
  );
  refused(r, ['measurement(s) failed', 'custom']);
  const report = JSON.parse(r.stdout.trim().split('\n')[0]);
  assert.ok(report.profiles[0].baseline.errors.inference || report.profiles[0].baseline.errors.training);
});

test('6: a diverged run (non-finite weights) does not replace the earlier memory', { skip }, () => {
  const out = makeMemory(dir, 'diverge');
  const g = guard(out);
  const r = run([
    'train',
    '--backbone',
    TINY,
    '--data',
    trainData,
    '--out',
    out,
    '--steps',
    '3',
    '--lr',
    '1e38',
    '--optimizer',
    'sgd',
    '--json',
  ]);
  refused(r, ['training diverged', 'lower']);
  g.unchanged();
});
