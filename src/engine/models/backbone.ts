/**
 * The frozen backbone: a RoBERTa encoder's weights under canonical names (`roberta.` prefix, PyTorch [out, in]
 * layout), its config, and the hashes that memory files record so a memory is never applied to the wrong model.
 *
 * Two sources: a Hugging Face directory (config.json, model.safetensors, tokenizer files) or `synthetic:NAME[@SEED]`,
 * random weights of a named geometry for tests and benchmarks that need no download.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createHash } from 'node:crypto';
import { RobertaConfig, SpartanError, TensorMap } from '../types';
import type { FileData } from '../onnx/graph';
import { readSafetensors, encodeSafetensors } from '../io/safetensors';
import { writeFileAtomic } from '../io/atomicWrite';
import { readRegularFileSync } from '../io/regularFile';
import { MAX_MODEL_TEXT_FILE_BYTES } from '../limits';
import { createRng } from '../util/random';
import { parseRobertaConfig, toHfConfig, SYNTHETIC_GEOMETRIES } from './config';

export interface Backbone {
  /** Directory basename, or the canonical `synthetic:NAME@SEED` spec. Recorded in memory files as backbone_name. */
  id: string;
  /** The directory it was loaded from (absent for synthetic backbones). */
  dir?: string;
  config: RobertaConfig;
  weights: TensorMap;
  /**
   * The weights stored as float32 in the backbone's file, by canonical name: ONNX Runtime can read these itself
   * (runtime/sessionBuild.ts). Absent for synthetic backbones.
   */
  files?: Map<string, FileData>;
  /** sha256 hex of model.safetensors (synthetic: of the canonical spec string). */
  weightsSha256: string;
  /** Directory holding tokenizer.json and/or vocab.json + merges.txt. */
  tokenizerDir: string;
  tokenizerHash: string;
}

/** Every tensor RobertaModel (without pooler) needs, canonical names in a fixed order, PyTorch shapes. */
export function expectedBackboneTensors(config: RobertaConfig): Map<string, number[]> {
  const d = config.hiddenSize;
  const ff = config.intermediateSize;
  const m = new Map<string, number[]>();
  m.set('roberta.embeddings.word_embeddings.weight', [config.vocabSize, d]);
  m.set('roberta.embeddings.position_embeddings.weight', [config.maxPositions, d]);
  m.set('roberta.embeddings.token_type_embeddings.weight', [config.typeVocabSize, d]);
  m.set('roberta.embeddings.LayerNorm.weight', [d]);
  m.set('roberta.embeddings.LayerNorm.bias', [d]);
  for (let i = 0; i < config.numLayers; i++) {
    const p = `roberta.encoder.layer.${i}.`;
    for (const proj of ['query', 'key', 'value']) {
      m.set(`${p}attention.self.${proj}.weight`, [d, d]);
      m.set(`${p}attention.self.${proj}.bias`, [d]);
    }
    m.set(`${p}attention.output.dense.weight`, [d, d]);
    m.set(`${p}attention.output.dense.bias`, [d]);
    m.set(`${p}attention.output.LayerNorm.weight`, [d]);
    m.set(`${p}attention.output.LayerNorm.bias`, [d]);
    m.set(`${p}intermediate.dense.weight`, [ff, d]);
    m.set(`${p}intermediate.dense.bias`, [ff]);
    m.set(`${p}output.dense.weight`, [d, ff]);
    m.set(`${p}output.dense.bias`, [d]);
    m.set(`${p}output.LayerNorm.weight`, [d]);
    m.set(`${p}output.LayerNorm.bias`, [d]);
  }
  return m;
}

let cachedRepoRoot: string | undefined;

/**
 * The directory containing package.json, found by walking up from this module: works from src/ under tsx and
 * from a bundled dist/ file alike, and inside an installed extension (whose root has the package.json).
 */
export function repoRoot(): string {
  if (cachedRepoRoot) return cachedRepoRoot;
  let dir = __dirname;
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return (cachedRepoRoot = dir);
    const parent = path.dirname(dir);
    if (parent === dir) throw new SpartanError(`cannot find the Spartan installation: no package.json above ${__dirname}`);
    dir = parent;
  }
}

/** The tokenizer shipped with the repository; synthetic backbones use it (they share RoBERTa's vocabulary). */
export function embeddedTokenizerDir(): string {
  return path.join(repoRoot(), 'models', 'roberta-mini');
}

/** Names a checkpoint may carry that a frozen encoder does not use; ignored rather than reported as unknown. */
function isIgnoredTensor(rawName: string): boolean {
  return (
    rawName.startsWith('lm_head.') ||
    rawName.startsWith('classifier.') ||
    rawName.startsWith('pooler.') ||
    rawName.startsWith('roberta.pooler.') ||
    rawName.endsWith('.position_ids')
  );
}

function canonicalName(rawName: string): string {
  return rawName.startsWith('roberta.') ? rawName : `roberta.${rawName}`;
}

async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  await new Promise<void>((resolve, reject) => {
    fs.createReadStream(file)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', resolve);
  });
  return hash.digest('hex');
}

/** Which tokenizer files a directory has: tokenizer.json wins; else the vocab.json + merges.txt pair. */
function tokenizerFiles(dir: string): string[] | undefined {
  if (fs.existsSync(path.join(dir, 'tokenizer.json'))) return [path.join(dir, 'tokenizer.json')];
  const pair = [path.join(dir, 'vocab.json'), path.join(dir, 'merges.txt')];
  return pair.every((f) => fs.existsSync(f)) ? pair : undefined;
}

/** sha256 over the tokenizer file(s) in `dir`, concatenated in a fixed order (async for its callers' sake). */
// eslint-disable-next-line @typescript-eslint/require-await -- callers await it; a later streaming read can keep the signature
export async function tokenizerHashOf(dir: string): Promise<string> {
  const files = tokenizerFiles(dir);
  if (!files) throw new SpartanError(`${dir}: no tokenizer.json (or vocab.json + merges.txt)`);
  const hash = createHash('sha256');
  for (const f of files) hash.update(readRegularFileSync(f, MAX_MODEL_TEXT_FILE_BYTES));
  return hash.digest('hex');
}

/** Loads `synthetic:NAME[@SEED]` or a Hugging Face directory. */
export async function loadBackbone(spec: string): Promise<Backbone> {
  if (spec.startsWith('synthetic:')) return loadSynthetic(spec);
  return loadDirectory(spec);
}

/** Parses `synthetic:NAME[@SEED]` into its parts; the canonical spec always carries the seed. */
export function parseSyntheticSpec(spec: string): { name: string; seed: number; canonical: string } {
  const m = /^synthetic:([^@]+)(?:@(\d+))?$/.exec(spec);
  if (!m) throw new SpartanError(`"${spec}" is not a valid synthetic backbone spec: use synthetic:NAME or synthetic:NAME@SEED`);
  const name = m[1];
  if (!Object.prototype.hasOwnProperty.call(SYNTHETIC_GEOMETRIES, name)) {
    throw new SpartanError(`unknown synthetic backbone "${name}" in "${spec}": choose one of ${Object.keys(SYNTHETIC_GEOMETRIES).join(', ')}`);
  }
  const seed = m[2] === undefined ? 0 : Number(m[2]);
  if (!Number.isSafeInteger(seed) || seed > 0xffffffff) throw new SpartanError(`seed in "${spec}" must be an integer in 0..4294967295`);
  return { name, seed, canonical: `synthetic:${name}@${seed}` };
}

async function loadSynthetic(spec: string): Promise<Backbone> {
  const { name, seed, canonical } = parseSyntheticSpec(spec);
  const config = { ...SYNTHETIC_GEOMETRIES[name] };
  const rng = createRng(seed);
  const weights: TensorMap = new Map();
  // Generated in expectedBackboneTensors order, so a seed always gives the same weights.
  for (const [tname, shape] of expectedBackboneTensors(config)) {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    // LayerNorm weights not exactly 1 (and biases not 0) so that gradient checks exercise the affine parameters.
    if (tname.endsWith('LayerNorm.weight')) rng.fillNormal(data, 1, 0.1);
    else rng.fillNormal(data, 0, 0.02);
    // Like transformers' _init_weights: embeddings with padding_idx have a zero padding row.
    if (tname === 'roberta.embeddings.word_embeddings.weight' || tname === 'roberta.embeddings.position_embeddings.weight') {
      data.fill(0, config.padTokenId * config.hiddenSize, (config.padTokenId + 1) * config.hiddenSize);
    }
    weights.set(tname, { shape, data });
  }
  const tokenizerDir = embeddedTokenizerDir();
  return {
    id: canonical,
    config,
    weights,
    weightsSha256: createHash('sha256').update(canonical).digest('hex'),
    tokenizerDir,
    tokenizerHash: await tokenizerHashOf(tokenizerDir),
  };
}

/** Lists up to `max` items and the total, for error messages that must name names but stay readable. */
function listSome(items: string[], max = 10): string {
  const shown = items.slice(0, max).join(', ');
  return items.length > max ? `${shown}, … (${items.length} in all)` : shown;
}

/**
 * The geometry of a backbone spec without loading its weights (synthetic: the named geometry; a folder: its
 * config.json), for checks that must come before expensive work (`bench --seq` against the positions).
 */
export function backboneConfigOf(spec: string): RobertaConfig {
  if (spec.startsWith('synthetic:')) return { ...SYNTHETIC_GEOMETRIES[parseSyntheticSpec(spec).name] };
  const configPath = path.join(path.resolve(spec), 'config.json');
  let json: unknown;
  try {
    json = JSON.parse(readRegularFileSync(configPath, MAX_MODEL_TEXT_FILE_BYTES).toString('utf8'));
  } catch (e) {
    if (e instanceof SpartanError) throw e;
    throw new SpartanError(`${configPath}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'not found; a backbone directory needs config.json' : `cannot be read as JSON (${(e as Error).message})`}`);
  }
  return parseRobertaConfig(json, configPath);
}

async function loadDirectory(spec: string): Promise<Backbone> {
  const dir = path.resolve(spec);
  let stat: fs.Stats;
  try {
    stat = fs.statSync(dir);
  } catch {
    throw new SpartanError(`${dir}: backbone directory not found (expected a Hugging Face model directory or synthetic:NAME)`);
  }
  if (!stat.isDirectory()) throw new SpartanError(`${dir}: is not a directory (a backbone is a Hugging Face model directory)`);

  const configPath = path.join(dir, 'config.json');
  if (!fs.existsSync(configPath)) throw new SpartanError(`${configPath}: not found; a backbone directory needs config.json`);
  let configJson: unknown;
  try {
    configJson = JSON.parse(readRegularFileSync(configPath, MAX_MODEL_TEXT_FILE_BYTES).toString('utf8'));
  } catch (e) {
    if (e instanceof SpartanError) throw e;
    throw new SpartanError(`${configPath}: invalid JSON (${(e as Error).message})`);
  }
  const config = parseRobertaConfig(configJson, configPath);

  const weightsPath = path.join(dir, 'model.safetensors');
  if (!fs.existsSync(weightsPath)) {
    const hint = fs.existsSync(path.join(dir, 'pytorch_model.bin'))
      ? ' (only pytorch_model.bin is present: convert it to safetensors, e.g. save_pretrained(..., safe_serialization=True))'
      : '';
    throw new SpartanError(`${weightsPath}: not found; a backbone directory needs model.safetensors${hint}`);
  }
  if (!tokenizerFiles(dir)) {
    throw new SpartanError(`${path.join(dir, 'tokenizer.json')}: not found, and no vocab.json + merges.txt either; a backbone directory needs its tokenizer`);
  }

  const file = readSafetensors(weightsPath, { include: (name) => !isIgnoredTensor(name) });
  const expected = expectedBackboneTensors(config);
  const found = new Map<string, { shape: number[]; data: Float32Array }>();
  const files = new Map<string, FileData>();
  const unknown: string[] = [];
  const duplicated: string[] = [];
  for (const [raw, t] of file.tensors) {
    const name = canonicalName(raw);
    if (!expected.has(name)) {
      unknown.push(raw);
      continue;
    }
    if (found.has(name)) duplicated.push(name);
    found.set(name, { shape: t.shape, data: t.data });
    if (t.dtype === 'F32' && file.stamp) files.set(name, { path: weightsPath, offset: t.offset, length: t.length, stamp: file.stamp });
  }
  const missing: string[] = [];
  const misshaped: string[] = [];
  for (const [name, shape] of expected) {
    const t = found.get(name);
    if (!t) missing.push(name);
    else if (t.shape.length !== shape.length || t.shape.some((v, i) => v !== shape[i])) {
      misshaped.push(`${name} [${t.shape.join(', ')}] (expected [${shape.join(', ')}])`);
    }
  }
  const problems: string[] = [];
  if (missing.length) problems.push(`${missing.length} missing tensor(s): ${listSome(missing)}`);
  if (unknown.length) problems.push(`${unknown.length} unexpected tensor(s): ${listSome(unknown)}`);
  if (misshaped.length) problems.push(`${misshaped.length} tensor(s) with the wrong shape for config.json: ${listSome(misshaped)}`);
  if (duplicated.length) problems.push(`tensor(s) present both with and without the "roberta." prefix: ${listSome(duplicated)}`);
  if (problems.length) {
    throw new SpartanError(`${weightsPath} does not match a RoBERTa encoder of ${configPath}:\n  ${problems.join('\n  ')}`);
  }

  const weights: TensorMap = new Map();
  for (const name of expected.keys()) weights.set(name, found.get(name)!);
  const [weightsSha256, tokenizerHash] = await Promise.all([sha256File(weightsPath), tokenizerHashOf(dir)]);
  return { id: path.basename(dir), dir, config, weights, files, weightsSha256, tokenizerDir: dir, tokenizerHash };
}

const TOKENIZER_FILES = ['tokenizer.json', 'vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json'];

/**
 * Writes a backbone as a Hugging Face directory (config.json, model.safetensors under canonical names, the
 * tokenizer files), so e.g. a synthetic backbone can be loaded by a PyTorch reference script or by loadBackbone.
 */
export function saveBackboneDir(backbone: Backbone, dir: string, dtype: 'float16' | 'float32' = 'float32'): void {
  fs.mkdirSync(dir, { recursive: true });
  writeFileAtomic(path.join(dir, 'config.json'), JSON.stringify(toHfConfig(backbone.config), null, 2) + '\n');
  // transformers refuses safetensors files without format "pt" in the metadata.
  writeFileAtomic(path.join(dir, 'model.safetensors'), encodeSafetensors(backbone.weights, dtype, { format: 'pt', spartan_source: backbone.id }));
  if (path.resolve(backbone.tokenizerDir) === path.resolve(dir)) return;
  for (const f of TOKENIZER_FILES) {
    const src = path.join(backbone.tokenizerDir, f);
    if (fs.existsSync(src)) writeFileAtomic(path.join(dir, f), fs.readFileSync(src));
  }
}
