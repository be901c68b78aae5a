/**
 * The part of the engine's API that the VS Code extension host loads: file readers and validators, JSONL
 * checks, defaults, limits and names. Nothing here loads onnxruntime-node or a tokenizer, so activating the
 * extension stays cheap and native code runs only in the engine's child processes (src/extension/engineProcess.ts).
 * Every name here is also exported by `./index`.
 */
export type { RoutingReport } from './analysis/routing';
export { inferTask, jsonlEditorProblems, parseJsonlText } from './data/jsonl';
export type { Example, RowProblem, TaskInfo } from './data/jsonl';
export { readRegularFileAsync } from './io/regularFile';
export { readSafetensorsHeaderAsync, readSafetensorsHeaderSync } from './io/safetensorsHeader';
export { MAX_JSONL_BYTES } from './limits';
export { parseMemoryMetadata } from './memory/memoryFile';
export { DEFAULT_GEOMETRY, spartanLayersOf } from './methods/spartan';
export { QUANTIZE_MODES } from './models/quantize';
export type { QuantizeMode } from './models/quantize';
export { withTrainingEnv } from './runtime/processEnv';
export { ChildFailed, EngineChild, PARENT_PID_ENV, describeExit, engineChildEnv, spawnEngine } from './runtime/childProcess';
export type { ChildExit, Entry, SpawnEngineOptions } from './runtime/childProcess';
export { TRAINING_DEFAULTS } from './training/defaults';
export type { TaskType } from './types';
export { splitRows } from './data/devSplit';
export { formatBytes } from './util/format';
