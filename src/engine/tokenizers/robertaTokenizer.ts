/**
 * RoBERTa byte-level BPE tokenizer with Hugging Face truncation semantics.
 *
 * Why `@huggingface/tokenizers` and not `@huggingface/transformers`: transformers.js v4 does its tokenization
 * with this very package (it lists `@huggingface/tokenizers` as a dependency), so the ids are the same. But
 * `@huggingface/transformers` also depends on `onnxruntime-web`, `sharp` and its own pinned `onnxruntime-node`
 * (plus `@huggingface/jinja`): a second ONNX Runtime build and an image library we would ship in the extension
 * for nothing. (Checked with `npm view @huggingface/transformers dependencies`, v4.3.1.)
 *
 * The library tokenizes; truncation is done here because its encode() has no max_length, and because we need
 * the exact Hugging Face rule (see `truncatedLengths`).
 */
import * as fs from 'fs';
import * as path from 'path';
import { Tokenizer } from '@huggingface/tokenizers';
import { SpartanError } from '../types';
import { readRegularFileSync } from '../io/regularFile';
import { MAX_MODEL_TEXT_FILE_BYTES } from '../limits';

export interface EncodedText {
  ids: number[];
  /** True when tokens of the text (or pair) were dropped to fit maxLength. */
  truncated: boolean;
}

export interface RobertaTokenizer {
  padId: number;
  bosId: number;
  eosId: number;
  /** One past the largest token id (added tokens included): the embedding row count a backbone must have. */
  vocabSize: number;
  /**
   * `<s> A </s>` or `<s> A </s></s> B </s>`, truncated like Hugging Face `truncation=True`; the special tokens
   * are always kept and the result has at most maxLength ids.
   */
  encode(text: string, textPair: string | undefined, maxLength: number): EncodedText;
}

/** Special tokens of a RoBERTa vocabulary, by their conventional names. */
const SPECIALS = { bos: '<s>', pad: '<pad>', eos: '</s>', unk: '<unk>', mask: '<mask>' } as const;

/**
 * Loads the tokenizer in `dir`: tokenizer.json (+ tokenizer_config.json when present), or, for checkpoints that
 * only ship the original GPT-2 style files, vocab.json + merges.txt.
 */
export function loadTokenizer(dir: string): RobertaTokenizer {
  const tokenizerJsonPath = path.join(dir, 'tokenizer.json');
  const configPath = path.join(dir, 'tokenizer_config.json');
  const config = fs.existsSync(configPath) ? (readJson(configPath) as Record<string, unknown>) : {};

  let tokenizerJson: Record<string, unknown>;
  if (fs.existsSync(tokenizerJsonPath)) {
    tokenizerJson = readJson(tokenizerJsonPath) as Record<string, unknown>;
  } else {
    const vocabPath = path.join(dir, 'vocab.json');
    const mergesPath = path.join(dir, 'merges.txt');
    for (const p of [vocabPath, mergesPath]) {
      if (!fs.existsSync(p)) {
        throw new SpartanError(`${dir}: no tokenizer found (need tokenizer.json, or vocab.json and merges.txt; ${p} is missing)`);
      }
    }
    tokenizerJson = tokenizerJsonFromVocabMerges(vocabPath, mergesPath);
  }

  let tokenizer: Tokenizer;
  try {
    tokenizer = new Tokenizer(tokenizerJson, config);
  } catch (e) {
    throw new SpartanError(`${dir}: cannot build the tokenizer: ${(e as Error).message}`);
  }
  return wrap(tokenizer, config, dir);
}

/**
 * The tokenizer.json that Hugging Face's RobertaTokenizerFast builds from vocab.json + merges.txt
 * (add_prefix_space=false, the RoBERTa default), so both layouts tokenize identically.
 */
export function tokenizerJsonFromVocabMerges(vocabPath: string, mergesPath: string): Record<string, unknown> {
  const vocab = readJson(vocabPath);
  if (vocab === null || typeof vocab !== 'object' || Array.isArray(vocab)) {
    throw new SpartanError(`${vocabPath}: expected a JSON object mapping tokens to ids`);
  }
  const vocabMap = vocab as Record<string, unknown>;
  for (const [token, id] of Object.entries(vocabMap)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new SpartanError(`${vocabPath}: token ${JSON.stringify(token)} has id ${JSON.stringify(id)}, expected a non-negative integer`);
    }
  }
  const merges = readMerges(mergesPath);

  const idOf = (name: string, required: boolean): number | undefined => {
    const id = vocabMap[name] as number | undefined;
    if (id === undefined && required) throw new SpartanError(`${vocabPath}: the special token ${name} is not in the vocabulary`);
    return id;
  };
  const bos = idOf(SPECIALS.bos, true)!;
  const eos = idOf(SPECIALS.eos, true)!;
  idOf(SPECIALS.pad, true);

  // Same flags as the added tokens of the published roberta-base tokenizer.json: <mask> strips the space before
  // it (lstrip) so "a <mask>" predicts " word"; the others match exactly.
  const addedTokens = (Object.values(SPECIALS) as string[])
    .filter((name) => vocabMap[name] !== undefined)
    .map((name) => ({
      id: vocabMap[name] as number,
      content: name,
      single_word: false,
      lstrip: name === SPECIALS.mask,
      rstrip: false,
      normalized: false,
      special: true,
    }));

  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: {
      type: 'RobertaProcessing',
      sep: [SPECIALS.eos, eos],
      cls: [SPECIALS.bos, bos],
      trim_offsets: true,
      add_prefix_space: false,
    },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab: vocabMap,
      merges,
    },
  };
}

/**
 * Token counts [first, second] kept out of [n1, n2] so that they fit `budget` (maxLength minus the special
 * tokens), as the Rust `tokenizers` LongestFirst strategy that `AutoTokenizer(..., truncation=True)` uses:
 * the longer sequence loses tokens until both are equally long, then both are cut to half the budget (the odd
 * token goes to the sequence that was longer, to the second on a tie). Without a pair, the text is cut at its end.
 */
export function truncatedLengths(n1: number, n2: number | undefined, budget: number): [number, number] {
  if (n2 === undefined) return [Math.min(n1, budget), 0];
  if (n1 + n2 <= budget) return [n1, n2];
  const swap = n1 > n2;
  let short = swap ? n2 : n1;
  let long = swap ? n1 : n2;
  long = short > budget ? short : Math.max(short, budget - short);
  if (short + long > budget) {
    short = Math.floor(budget / 2);
    long = short + (budget % 2);
  }
  return swap ? [long, short] : [short, long];
}

function wrap(tokenizer: Tokenizer, config: Record<string, unknown>, dir: string): RobertaTokenizer {
  const specialId = (key: string, fallback: string): number => {
    const name = tokenName(config[key]) ?? fallback;
    const id = tokenizer.token_to_id(name);
    if (id === undefined) throw new SpartanError(`${dir}: the special token ${name} (${key}) is not in the vocabulary`);
    return id;
  };
  const padId = specialId('pad_token', SPECIALS.pad);
  const bosId = specialId('bos_token', SPECIALS.bos);
  const eosId = specialId('eos_token', SPECIALS.eos);
  let maxId = -1;
  let maxTokenChars = 1;
  for (const [token, id] of tokenizer.get_vocab(true)) {
    maxId = Math.max(maxId, id);
    if (typeof token === 'string') maxTokenChars = Math.max(maxTokenChars, token.length);
  }
  const vocabSize = maxId + 1;

  const piece = (text: string, budget: number): number[] =>
    tokenizer.encode(cutForBudget(text, budget, maxTokenChars), { add_special_tokens: false }).ids;

  return {
    padId,
    bosId,
    eosId,
    vocabSize,
    encode(text: string, textPair: string | undefined, maxLength: number): EncodedText {
      // RobertaProcessing adds <s> A </s> (2 special ids) or <s> A </s></s> B </s> (4); each part is tokenized on its
      // own in a pair encoding too, so tokenizing the parts separately and joining them gives the same ids.
      const pair = textPair !== undefined;
      const specials = pair ? 4 : 2;
      const minimum = specials + (pair ? 2 : 1);
      if (!Number.isInteger(maxLength) || maxLength < minimum) {
        throw new SpartanError(
          `max length ${maxLength} is too small: need at least ${minimum} tokens for ${pair ? 'a text pair' : 'a text'}`,
        );
      }
      const a = piece(text, maxLength - specials);
      const b = pair ? piece(textPair, maxLength - specials) : undefined;
      const [k1, k2] = truncatedLengths(a.length, b?.length, maxLength - specials);
      const truncated = k1 < a.length || (b !== undefined && k2 < b.length);
      const ids = [bosId, ...a.slice(0, k1), eosId];
      if (b !== undefined) ids.push(eosId, ...b.slice(0, k2), eosId);
      return { ids, truncated };
    },
  };
}

/**
 * A prefix of `text` that tokenizes to the same first `budget` + 1 (or more) tokens as the whole text, so a
 * 50 MB row costs what its first tokens cost instead of a whole-text BPE pass. Why it is exact: a byte-level
 * token spans at most `maxTokenChars` bytes, hence at most that many characters, so `(budget + 1) * maxTokenChars`
 * characters hold more than `budget` tokens; and the prefix ends where a non-space is followed by a space, which
 * is a boundary of the GPT-2 pre-tokenizer, so no token before it changes. (Only a pair whose halves are both cut
 * and whose budget is odd can differ: LongestFirst gives the odd token to the longer half, and a cut half's full
 * length is not known. A "word" running past twice the limit without a space is cut mid-word.)
 */
export function cutForBudget(text: string, budget: number, maxTokenChars: number): string {
  const limit = (budget + 1) * maxTokenChars;
  if (text.length <= limit) return text;
  const end = Math.min(text.length, 2 * limit);
  for (let i = limit; i < end; i++) {
    if (/\s/.test(text[i]) && !/\s/.test(text[i - 1])) return text.slice(0, i);
  }
  // No boundary: cut at the limit anyway (still more than `budget` tokens), never inside a surrogate pair.
  const code = text.charCodeAt(limit - 1);
  return text.slice(0, code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit);
}

/** tokenizer_config.json stores special tokens either as strings or as AddedToken objects `{content: ...}`. */
function tokenName(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object' && typeof (value as { content?: unknown }).content === 'string') {
    return (value as { content: string }).content;
  }
  return undefined;
}

function readMerges(mergesPath: string): string[] {
  const lines = readRegularFileSync(mergesPath, MAX_MODEL_TEXT_FILE_BYTES).toString('utf8').split(/\r?\n/);
  const merges: string[] = [];
  lines.forEach((raw, i) => {
    // The first line is a "#version: 0.2" header; blank lines (the trailing newline) carry nothing.
    if (raw === '' || (i === 0 && raw.startsWith('#version'))) return;
    // Byte-level tokens never contain a space (it is mapped to "Ġ"), so a merge is exactly two space-separated parts.
    const parts = raw.split(' ');
    if (parts.length !== 2 || parts[0] === '' || parts[1] === '') {
      throw new SpartanError(`${mergesPath}:${i + 1}: expected two tokens separated by one space, got ${JSON.stringify(raw)}`);
    }
    merges.push(raw);
  });
  return merges;
}

function readJson(file: string): unknown {
  // Regular files only, bounded: a FIFO named tokenizer.json must not block the load forever.
  const text = readRegularFileSync(file, MAX_MODEL_TEXT_FILE_BYTES).toString('utf8');
  try {
    return JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (e) {
    throw new SpartanError(`${file}: invalid JSON: ${(e as Error).message}`);
  }
}
