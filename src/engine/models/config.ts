/**
 * RoBERTa geometry: parsing Hugging Face config.json into the engine's camelCase RobertaConfig, writing it back,
 * and the named geometries of synthetic backbones (used by tests and benchmarks without downloading weights).
 */
import { RobertaConfig, SpartanError } from '../types';

const COMMON = { typeVocabSize: 1, layerNormEps: 1e-5, padTokenId: 1, hiddenAct: 'gelu' } as const;

/** Geometries for `synthetic:NAME` backbones; the first three match the real checkpoints' shapes. */
// Frozen all the way down: callers copy before adapting a geometry, never edit the shared one.
export const SYNTHETIC_GEOMETRIES: Readonly<Record<string, Readonly<RobertaConfig>>> = Object.freeze({
  'roberta-base': Object.freeze({ vocabSize: 50265, hiddenSize: 768, numLayers: 12, numHeads: 12, intermediateSize: 3072, maxPositions: 514, ...COMMON }),
  'roberta-large': Object.freeze({ vocabSize: 50265, hiddenSize: 1024, numLayers: 24, numHeads: 16, intermediateSize: 4096, maxPositions: 514, ...COMMON }),
  'roberta-mini': Object.freeze({ vocabSize: 50265, hiddenSize: 256, numLayers: 4, numHeads: 4, intermediateSize: 1024, maxPositions: 514, ...COMMON }),
  tiny: Object.freeze({ vocabSize: 50265, hiddenSize: 64, numLayers: 2, numHeads: 4, intermediateSize: 128, maxPositions: 514, ...COMMON }),
});

/**
 * Reads a Hugging Face RoBERTa config.json object. Keys that RobertaConfig defaults when absent get Hugging
 * Face's defaults (so a minimal config means what it means to transformers); the geometry keys are required.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a config.json as parsed; every key used is checked below
export function parseRobertaConfig(json: any, path: string): RobertaConfig {
  const fail = (problem: string): never => {
    throw new SpartanError(`${path}: ${problem}`);
  };
  if (json === null || typeof json !== 'object' || Array.isArray(json)) fail('is not a JSON object');
  if (json.model_type !== undefined && json.model_type !== 'roberta') {
    fail(`model_type is "${json.model_type}" but only "roberta" models are supported`);
  }
  const int = (key: string, min: number, fallback?: number): number => {
    const v = json[key] ?? fallback;
    if (v === undefined) fail(`missing "${key}"`);
    if (!Number.isSafeInteger(v) || v < min) fail(`"${key}" must be an integer >= ${min}, got ${JSON.stringify(v)}`);
    return v;
  };
  const config: RobertaConfig = {
    vocabSize: int('vocab_size', 1),
    hiddenSize: int('hidden_size', 1),
    numLayers: int('num_hidden_layers', 1),
    numHeads: int('num_attention_heads', 1),
    intermediateSize: int('intermediate_size', 1),
    maxPositions: int('max_position_embeddings', 1),
    typeVocabSize: int('type_vocab_size', 1, 2), // transformers' RobertaConfig default
    layerNormEps: json.layer_norm_eps ?? 1e-12, // idem
    padTokenId: int('pad_token_id', 0, 1),
    hiddenAct: json.hidden_act ?? 'gelu',
  };
  if (typeof config.layerNormEps !== 'number' || !(config.layerNormEps > 0) || !Number.isFinite(config.layerNormEps)) {
    fail(`"layer_norm_eps" must be a positive number, got ${JSON.stringify(json.layer_norm_eps)}`);
  }
  if (config.hiddenSize % config.numHeads !== 0) {
    fail(`hidden_size ${config.hiddenSize} is not divisible by num_attention_heads ${config.numHeads}`);
  }
  if (config.hiddenAct !== 'gelu') {
    fail(`hidden_act "${config.hiddenAct}" is not supported (only "gelu", the exact erf form RoBERTa uses)`);
  }
  if (config.padTokenId >= config.vocabSize) fail(`pad_token_id ${config.padTokenId} is outside the vocabulary (${config.vocabSize})`);
  // Position ids are pad + 1 + index (RobertaEmbeddings), so the table must have room beyond the pad row.
  if (config.maxPositions <= config.padTokenId + 1) {
    fail(`max_position_embeddings ${config.maxPositions} leaves no positions after the padding offset ${config.padTokenId + 1}`);
  }
  const pet = json.position_embedding_type;
  if (pet !== undefined && pet !== 'absolute') fail(`position_embedding_type "${pet}" is not supported (only "absolute")`);
  return config;
}

/** The inverse of parseRobertaConfig: a config.json that transformers loads as a RoBERTa masked LM. */
export function toHfConfig(config: RobertaConfig): Record<string, unknown> {
  return {
    architectures: ['RobertaForMaskedLM'],
    model_type: 'roberta',
    vocab_size: config.vocabSize,
    hidden_size: config.hiddenSize,
    num_hidden_layers: config.numLayers,
    num_attention_heads: config.numHeads,
    intermediate_size: config.intermediateSize,
    hidden_act: config.hiddenAct,
    hidden_dropout_prob: 0.1,
    attention_probs_dropout_prob: 0.1,
    max_position_embeddings: config.maxPositions,
    type_vocab_size: config.typeVocabSize,
    initializer_range: 0.02,
    layer_norm_eps: config.layerNormEps,
    pad_token_id: config.padTokenId,
    bos_token_id: 0,
    eos_token_id: 2,
    position_embedding_type: 'absolute',
  };
}
