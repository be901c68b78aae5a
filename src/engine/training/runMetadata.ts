/**
 * What a finished training run writes into its memory's metadata (keys in docs/ARCHITECTURE.md): one definition
 * for `spartan train` and the GLUE grid, which adds its task and protocol, so that a memory describes its run the
 * same way wherever it was trained (the model card, `rank` and `routes` read these keys).
 */
import type { TaskInfo } from '../data/jsonl';
import { MEMORY_FORMAT_VERSION, MemoryMetadata, Provenance } from '../memory/memoryFile';
import type { Backbone } from '../models/backbone';
import type { Calibration } from '../../protocol/results';
import type { TrainConfig, TrainResult } from './trainer';

/** The training configuration as stored in `hyperparameters`, with the optimiser steps the run really took. */
export function hyperparametersOf(cfg: TrainConfig, steps: number): Record<string, unknown> {
  return {
    method: cfg.method.name,
    ...cfg.method.geometry,
    trainLayerNorms: cfg.method.trainLayerNorms,
    optimizer: cfg.optimizer,
    lr: cfg.lr,
    weightDecay: cfg.weightDecay,
    warmupRatio: cfg.warmupRatio,
    clipNorm: cfg.clipNorm,
    epochs: cfg.epochs,
    steps,
    batchSize: cfg.batchSize,
    maxLength: cfg.maxLength,
    dropout: cfg.dropout,
    seed: cfg.seed,
  };
}

export interface TrainedRun {
  backbone: Backbone;
  task: TaskInfo;
  cfg: TrainConfig;
  result: TrainResult;
  trainRows: number;
  devRows: number;
  /** The metrics to store; default: the result's dev metrics. */
  metrics?: Record<string, number>;
  /** Hyper-parameters beyond the configuration (`init`; the grid's task and protocol), stored after `pair`. */
  extra?: Record<string, unknown>;
  calibration?: Calibration;
  provenance?: Provenance;
}

/** The metadata of the memory a run saves. */
export function trainedMemoryMetadata(run: TrainedRun): MemoryMetadata {
  const { backbone, task, cfg, result } = run;
  return {
    formatVersion: MEMORY_FORMAT_VERSION,
    method: cfg.method.name,
    backbone: { name: backbone.id, sha256: backbone.weightsSha256 },
    tokenizerHash: backbone.tokenizerHash,
    task: task.task,
    labels: task.labels,
    hyperparameters: { ...hyperparametersOf(cfg, result.steps), pair: task.pair, ...run.extra },
    metrics: {
      ...(run.metrics ?? result.metrics),
      bestEpoch: result.bestEpoch,
      trainRows: run.trainRows,
      devRows: run.devRows,
      truncated: result.truncated,
      seconds: result.seconds,
    },
    createdAt: new Date().toISOString(),
    ...(run.calibration ? { calibration: run.calibration } : {}),
    ...(run.provenance ? { provenance: run.provenance } : {}),
  };
}
