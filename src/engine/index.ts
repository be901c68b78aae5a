/**
 * The engine's public entry point: everything the CLI, the lab (src/lab), the scripts and other programs use.
 * Modules outside src/engine import from here (or, in the editor host, from `./light`), never from the files
 * inside, so the names below are the engine's API and the files behind them can move. Grouped by the folder
 * that implements them; docs/ARCHITECTURE.md says what each folder does.
 */
export {
  AUDIT_DEFAULTS,
  AUDIT_SCORES,
  DEFAULT_AUDIT_SCORE,
  auditLabels,
  outOfFoldProbabilities,
  rankSuspects,
  suspectScore,
} from './analysis/audit';
export type { OutOfFold } from './analysis/audit';
export { modelCard } from './analysis/modelCard';
export { parentRouting } from './analysis/routing';
export type { RoutingReport } from './analysis/routing';
export { rankRows } from './analysis/uncertainty';
export { encodeExamples, makeBatches, padBatch } from './data/batching';
export type { EncodedExample, PaddedBatch } from './data/batching';
export { splitRows } from './data/devSplit';
export { GLUE_TASKS, glueTaskName, importGlueTask, writeJsonl } from './data/glue';
export type { GlueRow } from './data/glue';
export { checkDevLabels, inferTask, jsonlEditorProblems, parseJsonlText, readJsonl, readUnlabelledJsonl } from './data/jsonl';
export type { Example, RowProblem, TaskInfo } from './data/jsonl';
export { INFERENCE_MICRO_BATCH_TOKENS, INT8_TRAINING_MICRO_BATCH_TOKENS, MICRO_BATCH_TOKENS } from './data/microBatches';
export { downloadModel } from './hub';
export { writeFileAtomic } from './io/atomicWrite';
export { checkNotAnInput, checkOutputPath } from './io/outputPath';
export { describeFsError, describeNonRegular, readRegularFileAsync, readRegularFileSync } from './io/regularFile';
export { encodeSafetensors } from './io/safetensors';
export { readSafetensorsHeaderAsync, readSafetensorsHeaderSync } from './io/safetensorsHeader';
export {
  MAX_ARGV_TEXT_BYTES,
  MAX_JSONL_BYTES,
  MAX_METHOD_VALUES,
  MAX_REQUEST_BYTES,
  MAX_TEXT_BYTES,
  MAX_THREADS,
  SERVE_CACHE_ENTRIES,
  SERVE_REQUEST_TIMEOUT_MS,
  checkSequenceLength,
  checkTextSize,
  mib,
  sizeProblem,
  textSizeProblem,
} from './limits';
export { MEMORY_FORMAT_VERSION, loadMemory, parseMemoryMetadata, saveMemory } from './memory/memoryFile';
export { checkFinite, maxLengthOf, quantizeFromMetadata } from './memory/memoryMethod';
export { provenanceOf, sha256OfFile } from './memory/provenance';
export { METHODS, initialTensors, methodShapes, methodSpec, trainableNames } from './methods';
export type { MethodName, MethodSpec } from './methods';
export { DEFAULT_GEOMETRY, spartanLayersOf } from './methods/spartan';
export {
  backboneConfigOf,
  embeddedTokenizerDir,
  loadBackbone,
  parseSyntheticSpec,
  repoRoot,
  saveBackboneDir,
  tokenizerHashOf,
} from './models/backbone';
export type { Backbone } from './models/backbone';
export {
  INT8_LEVELS,
  QUANTIZE_MODES,
  dropInt8SourceWeights,
  quantizeAndDropSources,
  int8WeightLevels,
  quantizeForInputGradient,
  quantizeForward,
} from './models/quantize';
export type { Int8Copies, QuantizeMode } from './models/quantize';
export { Graph } from './onnx/graph';
export { toModelBytes } from './onnx/serialize';
export { evaluationReport } from './pipeline/evalReport';
export { TaskModel, methodFromMetadata } from './pipeline/taskModel';
export { compileInference, compileStandalone, compileTraining } from './runtime/compile';
export type { CompiledGraph } from './runtime/compile';
export {
  ChildFailed,
  EngineChild,
  PARENT_PID_ENV,
  describeExit,
  engineChildEnv,
  exitWithParent,
  parentGone,
  selfEntry,
  spawnEngine,
} from './runtime/childProcess';
export type { ChildExit, Entry, SpawnEngineOptions } from './runtime/childProcess';
export { predictLogits } from './runtime/predict';
export { withTrainingEnv } from './runtime/processEnv';
export { reclaimGarbage } from './runtime/reclaim';
export { GraphSession } from './runtime/session';
export { buildSessions } from './runtime/sessionBuild';
export type { FrozenLinears, GraphSpec, SessionBuild } from './runtime/sessionBuild';
export { loadTokenizer } from './tokenizers/robertaTokenizer';
export type { EncodedText, RobertaTokenizer } from './tokenizers/robertaTokenizer';
export { TRAINING_DEFAULTS } from './training/defaults';
export { formatTable } from './training/errorAnalysis';
export { accumulatedStep } from './training/microBatch';
export { hyperparametersOf, trainedMemoryMetadata } from './training/runMetadata';
export type { TrainedRun } from './training/runMetadata';
export { AdamW, clipScaleOfSquares } from './training/optimizer';
export { evaluate, graphOptions, layerParams, numLabelsOf, train } from './training/trainer';
export type { TrainConfig, TrainEvent } from './training/trainer';
export { SpartanError } from './types';
export type { MemoryGeometry, RobertaConfig, TaskType, TensorMap } from './types';
export { formatBytes } from './util/format';
export { createRng, shuffleInPlace } from './util/random';
