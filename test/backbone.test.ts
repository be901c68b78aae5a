import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { SpartanError, FloatTensor } from '../src/engine/types';
import {
  loadBackbone,
  saveBackboneDir,
  expectedBackboneTensors,
  repoRoot,
  parseSyntheticSpec,
  Backbone,
} from '../src/engine/models/backbone';
import { parseRobertaConfig, toHfConfig, SYNTHETIC_GEOMETRIES } from '../src/engine/models/config';
import { encodeSafetensors, readSafetensors } from '../src/engine/io/safetensors';
import { createRng, shuffleInPlace } from '../src/engine/util/random';

const MINI_DIR = path.join(__dirname, '..', 'models', 'roberta-mini');
const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-bb-'));
after(() => fs.rmSync(scratch, { recursive: true, force: true }));

const sha256 = (buf: Buffer) => createHash('sha256').update(buf).digest('hex');

async function rejectsWith(p: Promise<unknown>, ...patterns: Array<RegExp | string>): Promise<string> {
  let message = '';
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof SpartanError, `expected SpartanError, got ${String(e)}`);
    message = e.message;
    for (const pat of patterns) {
      if (typeof pat === 'string') assert.ok(e.message.includes(pat), `message lacks "${pat}": ${e.message}`);
      else assert.match(e.message, pat);
    }
    return true;
  });
  return message;
}

/** A backbone directory with the tiny synthetic geometry whose weights `edit` may tamper with. */
function makeDir(name: string, bb: Backbone, edit?: (m: Map<string, FloatTensor>) => Map<string, FloatTensor>): string {
  const dir = path.join(scratch, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(bb.config)));
  fs.copyFileSync(path.join(MINI_DIR, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  const weights = edit ? edit(new Map(bb.weights)) : bb.weights;
  fs.writeFileSync(path.join(dir, 'model.safetensors'), encodeSafetensors(weights, 'float32', { format: 'pt' }));
  return dir;
}

test('repoRoot finds the directory with package.json', () => {
  const root = repoRoot();
  assert.ok(fs.existsSync(path.join(root, 'package.json')));
  assert.equal(path.resolve(root), path.resolve(__dirname, '..'));
});

test('expectedBackboneTensors lists every RobertaModel tensor in PyTorch layout', () => {
  const cfg = SYNTHETIC_GEOMETRIES['roberta-base'];
  const m = expectedBackboneTensors(cfg);
  assert.equal(m.size, 5 + 16 * 12);
  assert.deepEqual(m.get('roberta.embeddings.word_embeddings.weight'), [50265, 768]);
  assert.deepEqual(m.get('roberta.embeddings.position_embeddings.weight'), [514, 768]);
  assert.deepEqual(m.get('roberta.embeddings.token_type_embeddings.weight'), [1, 768]);
  assert.deepEqual(m.get('roberta.encoder.layer.11.intermediate.dense.weight'), [3072, 768]);
  assert.deepEqual(m.get('roberta.encoder.layer.11.output.dense.weight'), [768, 3072]);
  assert.deepEqual(m.get('roberta.encoder.layer.0.attention.self.value.bias'), [768]);
  let params = 0;
  for (const s of m.values()) params += s.reduce((a, b) => a * b, 1);
  assert.equal(params, 124645632 - 590592); // roberta-base minus its pooler (768*768+768)
});

test('loads the shipped roberta-mini directory with a stable sha256', async () => {
  const bb = await loadBackbone(MINI_DIR);
  assert.equal(bb.id, 'roberta-mini');
  assert.equal(bb.dir, path.resolve(MINI_DIR));
  assert.equal(bb.config.numLayers, 4);
  assert.equal(bb.config.hiddenSize, 256);
  assert.equal(bb.config.numHeads, 4);
  assert.equal(bb.config.intermediateSize, 1024);
  assert.equal(bb.weights.size, 5 + 16 * 4);
  assert.deepEqual([...bb.weights.keys()], [...expectedBackboneTensors(bb.config).keys()]);
  for (const name of bb.weights.keys()) assert.ok(name.startsWith('roberta.'), name);
  assert.equal(bb.weightsSha256, sha256(fs.readFileSync(path.join(MINI_DIR, 'model.safetensors'))));
  assert.equal(bb.tokenizerHash, sha256(fs.readFileSync(path.join(MINI_DIR, 'tokenizer.json'))));
  assert.equal(bb.tokenizerDir, path.resolve(MINI_DIR));
  const again = await loadBackbone(MINI_DIR);
  assert.equal(again.weightsSha256, bb.weightsSha256);
  assert.deepEqual(
    again.weights.get('roberta.encoder.layer.3.output.LayerNorm.bias'),
    bb.weights.get('roberta.encoder.layer.3.output.LayerNorm.bias'),
  );
});

test('synthetic:tiny is deterministic by seed, with the documented distributions', async () => {
  const a = await loadBackbone('synthetic:tiny');
  const b = await loadBackbone('synthetic:tiny@0');
  const c = await loadBackbone('synthetic:tiny@7');
  assert.equal(a.id, 'synthetic:tiny@0');
  assert.equal(a.weightsSha256, b.weightsSha256);
  assert.equal(a.weightsSha256, sha256(Buffer.from('synthetic:tiny@0')));
  assert.notEqual(c.weightsSha256, a.weightsSha256);
  assert.deepEqual(a.config, SYNTHETIC_GEOMETRIES.tiny);
  assert.equal(a.config.numLayers, 2);
  assert.equal(a.config.hiddenSize, 64);
  for (const [name, t] of a.weights) {
    assert.deepEqual(t.data, b.weights.get(name)!.data, name);
    assert.deepEqual(t.shape, expectedBackboneTensors(a.config).get(name));
  }
  const q = 'roberta.encoder.layer.1.attention.self.query.weight';
  assert.notDeepEqual(a.weights.get(q)!.data, c.weights.get(q)!.data);

  const stats = (x: Float32Array) => {
    const mean = x.reduce((s, v) => s + v, 0) / x.length;
    const std = Math.sqrt(x.reduce((s, v) => s + (v - mean) ** 2, 0) / x.length);
    return { mean, std };
  };
  const w = stats(a.weights.get('roberta.encoder.layer.0.intermediate.dense.weight')!.data);
  assert.ok(Math.abs(w.mean) < 0.002 && Math.abs(w.std - 0.02) < 0.002, JSON.stringify(w));
  const ln = stats(a.weights.get('roberta.encoder.layer.0.output.LayerNorm.weight')!.data);
  assert.ok(Math.abs(ln.mean - 1) < 0.05 && ln.std > 0.05 && ln.std < 0.15, JSON.stringify(ln));
  const lnb = a.weights.get('roberta.embeddings.LayerNorm.bias')!.data;
  assert.ok(lnb.some((v) => v !== 0));
  // Padding rows are zero, as transformers initialises embeddings with padding_idx.
  const emb = a.weights.get('roberta.embeddings.word_embeddings.weight')!.data;
  assert.ok(emb.subarray(64, 128).every((v) => v === 0));
  assert.ok(emb.subarray(0, 64).some((v) => v !== 0));
  // Tokenizer is the embedded one.
  assert.equal(a.tokenizerDir, path.join(repoRoot(), 'models', 'roberta-mini'));
  assert.equal(a.tokenizerHash, sha256(fs.readFileSync(path.join(MINI_DIR, 'tokenizer.json'))));
});

test('bad synthetic specs are clear errors', async () => {
  await rejectsWith(loadBackbone('synthetic:huge'), 'unknown synthetic backbone "huge"', 'roberta-base');
  await rejectsWith(loadBackbone('synthetic:tiny@x'), 'not a valid synthetic backbone spec');
  assert.deepEqual(parseSyntheticSpec('synthetic:roberta-mini@3'), {
    name: 'roberta-mini',
    seed: 3,
    canonical: 'synthetic:roberta-mini@3',
  });
});

test('a directory with a removed, a renamed and a mis-shaped tensor reports them by name in one error', async () => {
  const bb = await loadBackbone('synthetic:tiny@1');
  const dir = makeDir('broken', bb, (m) => {
    m.delete('roberta.encoder.layer.0.attention.self.key.bias');
    const q = m.get('roberta.encoder.layer.1.attention.self.query.weight')!;
    m.delete('roberta.encoder.layer.1.attention.self.query.weight');
    m.set('roberta.encoder.layer.1.attention.self.qurey.weight', q);
    m.set('roberta.encoder.layer.1.intermediate.dense.weight', { shape: [64, 128], data: new Float32Array(64 * 128) });
    return m;
  });
  const msg = await rejectsWith(
    loadBackbone(dir),
    path.join(dir, 'model.safetensors'),
    /2 missing tensor\(s\): roberta\.encoder\.layer\.0\.attention\.self\.key\.bias, roberta\.encoder\.layer\.1\.attention\.self\.query\.weight/,
    /1 unexpected tensor\(s\): roberta\.encoder\.layer\.1\.attention\.self\.qurey\.weight/,
    /roberta\.encoder\.layer\.1\.intermediate\.dense\.weight \[64, 128\] \(expected \[128, 64\]\)/,
  );
  assert.ok(!msg.includes('layer.0.attention.self.query'), 'only the broken tensors are listed');
});

test('many missing tensors are listed up to 10 with a count', async () => {
  const bb = await loadBackbone('synthetic:tiny@1');
  const dir = makeDir('gutted', bb, (m) => new Map([...m].filter(([n]) => !n.includes('layer.1.'))));
  await rejectsWith(loadBackbone(dir), /16 missing tensor\(s\): .*… \(16 in all\)/);
});

test('names without the roberta. prefix are accepted; known extras are ignored', async () => {
  const bb = await loadBackbone('synthetic:tiny@2');
  const dir = makeDir('unprefixed', bb, (m) => {
    const out = new Map<string, FloatTensor>();
    for (const [n, t] of m) out.set(n.replace(/^roberta\./, ''), t);
    out.set('lm_head.dense.weight', { shape: [64, 64], data: new Float32Array(64 * 64) });
    out.set('lm_head.bias', { shape: [50265], data: new Float32Array(50265) });
    out.set('pooler.dense.weight', { shape: [64, 64], data: new Float32Array(64 * 64) });
    out.set('embeddings.position_ids', { shape: [1, 514], data: new Float32Array(514) });
    out.set('classifier.out_proj.weight', { shape: [2, 64], data: new Float32Array(128) });
    return out;
  });
  const loaded = await loadBackbone(dir);
  assert.equal(loaded.id, 'unprefixed');
  assert.deepEqual([...loaded.weights.keys()], [...bb.weights.keys()]);
  for (const [n, t] of bb.weights) assert.deepEqual(loaded.weights.get(n)!.data, t.data, n);
});

test('missing directory, config.json, model.safetensors and tokenizer files are clear errors naming the path', async () => {
  await rejectsWith(loadBackbone(path.join(scratch, 'does-not-exist')), path.join(scratch, 'does-not-exist'), 'not found');
  const bb = await loadBackbone('synthetic:tiny@3');

  const noConfig = makeDir('no-config', bb);
  fs.rmSync(path.join(noConfig, 'config.json'));
  await rejectsWith(loadBackbone(noConfig), path.join(noConfig, 'config.json'), 'not found');

  const badConfig = makeDir('bad-config', bb);
  fs.writeFileSync(path.join(badConfig, 'config.json'), '{"hidden_size": 64,');
  await rejectsWith(loadBackbone(badConfig), path.join(badConfig, 'config.json'), 'invalid JSON');

  const noWeights = makeDir('no-weights', bb);
  fs.rmSync(path.join(noWeights, 'model.safetensors'));
  fs.writeFileSync(path.join(noWeights, 'pytorch_model.bin'), 'x');
  await rejectsWith(loadBackbone(noWeights), path.join(noWeights, 'model.safetensors'), 'not found', 'pytorch_model.bin');

  const noTok = makeDir('no-tokenizer', bb);
  fs.rmSync(path.join(noTok, 'tokenizer.json'));
  fs.copyFileSync(path.join(MINI_DIR, 'vocab.json'), path.join(noTok, 'vocab.json')); // merges.txt still missing
  await rejectsWith(loadBackbone(noTok), path.join(noTok, 'tokenizer.json'), 'vocab.json + merges.txt');

  // With the pair complete it loads, hashing vocab.json then merges.txt.
  fs.copyFileSync(path.join(MINI_DIR, 'merges.txt'), path.join(noTok, 'merges.txt'));
  const loaded = await loadBackbone(noTok);
  const h = createHash('sha256');
  h.update(fs.readFileSync(path.join(MINI_DIR, 'vocab.json')));
  h.update(fs.readFileSync(path.join(MINI_DIR, 'merges.txt')));
  assert.equal(loaded.tokenizerHash, h.digest('hex'));
});

test('saveBackboneDir round trip: float32 exact, float16 close, loadable and HF-shaped', async () => {
  const bb = await loadBackbone('synthetic:tiny@5');
  const dir32 = path.join(scratch, 'saved32', 'nested');
  saveBackboneDir(bb, dir32);
  for (const f of ['config.json', 'model.safetensors', 'tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json']) {
    assert.ok(fs.existsSync(path.join(dir32, f)), f);
  }
  const cfg = JSON.parse(fs.readFileSync(path.join(dir32, 'config.json'), 'utf8'));
  assert.equal(cfg.model_type, 'roberta');
  assert.deepEqual(cfg.architectures, ['RobertaForMaskedLM']);
  assert.equal(readSafetensors(path.join(dir32, 'model.safetensors')).metadata.format, 'pt');
  const back = await loadBackbone(dir32);
  assert.deepEqual(back.config, bb.config);
  assert.equal(back.tokenizerHash, bb.tokenizerHash);
  assert.equal(back.id, 'nested');
  for (const [n, t] of bb.weights) assert.deepEqual(back.weights.get(n)!.data, t.data, n);

  const dir16 = path.join(scratch, 'saved16');
  saveBackboneDir(bb, dir16, 'float16');
  const back16 = await loadBackbone(dir16);
  assert.notEqual(back16.weightsSha256, back.weightsSha256);
  const a = bb.weights.get('roberta.encoder.layer.0.output.LayerNorm.weight')!.data;
  const b = back16.weights.get('roberta.encoder.layer.0.output.LayerNorm.weight')!.data;
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= Math.abs(a[i]) * 2 ** -11, `${a[i]} vs ${b[i]}`);
  assert.ok(fs.statSync(path.join(dir16, 'model.safetensors')).size < fs.statSync(path.join(dir32, 'model.safetensors')).size * 0.6);
});

test('parseRobertaConfig validates and inverts toHfConfig', () => {
  for (const [name, cfg] of Object.entries(SYNTHETIC_GEOMETRIES)) {
    assert.deepEqual(parseRobertaConfig(toHfConfig(cfg), `${name}.json`), cfg);
  }
  assert.equal(SYNTHETIC_GEOMETRIES['roberta-large'].numLayers, 24);
  assert.equal(SYNTHETIC_GEOMETRIES['roberta-mini'].hiddenSize, 256);
  const real = parseRobertaConfig(JSON.parse(fs.readFileSync(path.join(MINI_DIR, 'config.json'), 'utf8')), 'c.json');
  assert.deepEqual(real, SYNTHETIC_GEOMETRIES['roberta-mini']);
  const base = toHfConfig(SYNTHETIC_GEOMETRIES.tiny);
  const bad = (patch: Record<string, unknown>, re: RegExp) =>
    assert.throws(
      () => parseRobertaConfig({ ...base, ...patch }, '/x/config.json'),
      (e: unknown) => {
        assert.ok(e instanceof SpartanError);
        assert.ok(e.message.startsWith('/x/config.json: '), e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  bad({ model_type: 'bert' }, /model_type is "bert"/);
  bad({ hidden_size: 65 }, /not divisible by num_attention_heads 4/);
  bad({ hidden_act: 'relu' }, /hidden_act "relu" is not supported/);
  bad({ num_hidden_layers: 0 }, /"num_hidden_layers" must be an integer >= 1, got 0/);
  bad({ vocab_size: 1.5 }, /"vocab_size" must be an integer/);
  bad({ intermediate_size: undefined }, /missing "intermediate_size"/);
  bad({ layer_norm_eps: -1 }, /layer_norm_eps/);
  // transformers' defaults apply to optional keys.
  const { type_vocab_size, layer_norm_eps, pad_token_id, hidden_act, model_type, ...minimal } = base;
  void [type_vocab_size, layer_norm_eps, pad_token_id, hidden_act, model_type];
  const d = parseRobertaConfig(minimal, 'm.json');
  assert.equal(d.typeVocabSize, 2);
  assert.equal(d.layerNormEps, 1e-12);
  assert.equal(d.padTokenId, 1);
  assert.equal(d.hiddenAct, 'gelu');
});

test('createRng is seeded and uniform-ish; shuffleInPlace permutes deterministically', () => {
  const a = createRng(42);
  const b = createRng(42);
  const xs = Array.from({ length: 10000 }, () => a.next());
  assert.deepEqual(
    xs.slice(0, 100),
    Array.from({ length: 100 }, () => b.next()),
  );
  assert.ok(xs.every((x) => x >= 0 && x < 1));
  const mean = xs.reduce((s, x) => s + x, 0) / xs.length;
  assert.ok(Math.abs(mean - 0.5) < 0.02, `mean ${mean}`);
  assert.notEqual(createRng(43).next(), createRng(42).next());
  const n = createRng(1);
  const ns = Array.from({ length: 20000 }, () => n.normal());
  const nm = ns.reduce((s, x) => s + x, 0) / ns.length;
  const nv = ns.reduce((s, x) => s + (x - nm) ** 2, 0) / ns.length;
  assert.ok(Math.abs(nm) < 0.03 && Math.abs(nv - 1) < 0.05, `${nm} ${nv}`);
  const arr = Array.from({ length: 50 }, (_, i) => i);
  const s1 = shuffleInPlace(arr.slice(), createRng(9));
  const s2 = shuffleInPlace(arr.slice(), createRng(9));
  assert.deepEqual(s1, s2);
  assert.notDeepEqual(s1, arr);
  assert.deepEqual(
    s1.slice().sort((x, y) => x - y),
    arr,
  );
});

test('fillNormal consumes the generator exactly like repeated normal() calls', () => {
  const a = createRng(77);
  const b = createRng(77);
  const viaNormal = Float64Array.from({ length: 7 }, () => a.normal());
  const viaFill = new Float64Array(7);
  b.fillNormal(viaFill.subarray(0, 3)); // odd length leaves a spare for the next call
  b.fillNormal(viaFill.subarray(3, 7));
  assert.deepEqual(viaFill, viaNormal);
  assert.equal(a.next(), b.next());
  const scaled = new Float64Array(2);
  createRng(5).fillNormal(scaled, 1, 0.1);
  const ref = createRng(5);
  assert.deepEqual(Array.from(scaled), [1 + 0.1 * ref.normal(), 1 + 0.1 * ref.normal()]);
});
