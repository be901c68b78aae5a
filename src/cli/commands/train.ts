/** `spartan train`: fine-tune a memory (or another method's delta) on a JSONL file and save it atomically. */
import * as os from 'os';
import * as path from 'path';
import { Command, Option } from 'commander';
import {
  checkNotAnInput,
  checkOutputPath,
  MAX_METHOD_VALUES,
  checkSequenceLength,
  checkFinite,
  loadBackbone,
  checkDevLabels,
  Example,
  inferTask,
  TaskInfo,
  loadTokenizer,
  loadMemory,
  saveMemory,
  METHODS,
  MethodName,
  MethodSpec,
  methodSpec,
  methodShapes,
  methodFromMetadata,
  train,
  TrainConfig,
  TrainEvent,
  SpartanError,
  TensorMap,
  splitRows,
  TRAINING_DEFAULTS,
  provenanceOf,
  parentGone,
  trainedMemoryMetadata,
  quantizeFromMetadata,
  QuantizeMode,
} from '../../engine';
import { makeOutput } from '../output';
import { addTrainingOptions, geometryOf, sharedTrainConfig } from '../trainingOptions';
import { describeProblems, readRows } from '../rows';
import { defaultThreads, floatOption, intOption, quantizeOption, resolveBackboneSpec } from '../options';

/**
 * Saves with `save(file)`; when that fails after a training run (a disk filled up meanwhile), the result is not
 * thrown away: it is saved to the temp folder and the one-line error says where.
 */
function saveOrRescue(file: string, save: (file: string) => number): number {
  try {
    return save(file);
  } catch (e) {
    const rescue = path.join(os.tmpdir(), `spartan-unsaved-${process.pid}-${Date.now()}.safetensors`);
    let where = '';
    try {
      save(rescue);
      where = `; the trained memory was saved to ${rescue} instead`;
    } catch {
      where = '; the trained memory could not be saved anywhere';
    }
    throw new SpartanError(`${(e as Error).message}${where}`);
  }
}

export function registerTrain(program: Command): void {
  const cmd = program
    .command('train')
    .description('fine-tune a task memory on a JSONL file of {"text", "label"[, "text_pair"]} rows')
    .requiredOption('--data <file>', 'training rows (JSONL)')
    .requiredOption('--out <file>', 'where to save the memory (.safetensors); written atomically')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone', 'embedded')
    .option('--dev <file>', 'dev rows (JSONL), evaluated after every epoch; the best epoch is kept')
    .option('--dev-share <fraction>', 'hold out this share of the training rows as the dev set (when no --dev)', floatOption(0, 0.5, false))
    .option('--init <file>', 'start from an existing memory (its geometry and method are used)')
    .addOption(new Option('--method <name>', 'adaptation method').choices(METHODS).default('spartan'));
  addTrainingOptions(cmd)
    .option('--train-layer-norms', "train the backbone's LayerNorm parameters (default for spartan, as the authors' code)")
    .option('--no-train-layer-norms', "keep the backbone's LayerNorm parameters frozen (default for adapters and head)")
    .addOption(
      new Option('--optimizer <name>', 'adamw, or plain sgd (no momentum, decay, clipping or schedule)')
        .choices(['adamw', 'sgd'])
        .default('adamw'),
    )
    .option('--lr <rate>', 'peak learning rate', floatOption(0, Infinity, false), TRAINING_DEFAULTS.lr)
    .option('--epochs <n>', 'epochs', intOption(1), TRAINING_DEFAULTS.epochs)
    .option('--steps <n>', 'total optimiser steps instead of epochs (0 saves the initial memory)', intOption(0))
    .option('--seed <n>', 'seed of initialisation, shuffling and dropout', intOption(0), TRAINING_DEFAULTS.seed)
    .option('--no-shuffle', 'keep the file order (and no length bucketing)')
    .option('--no-bucket', 'no length bucketing (batches still shuffled)')
    .option('--patience <n>', 'early stopping: evaluations without dev improvement; 0 disables', intOption(0), TRAINING_DEFAULTS.patience)
    .option('--metric <name>', 'dev metric that picks the best epoch (accuracy, f1, mcc, pearson, spearman)')
    .addOption(new Option('--dtype <type>', 'storage type of the memory file').choices(['float16', 'float32']).default('float16'))
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .addOption(quantizeOption("backbone precision (default none = float32, or the --init memory's)"))
    .option('--skip-invalid', 'train on the valid rows of a file that has invalid ones (they are reported)')
    .option('--json', 'JSON result on stdout, JSON-lines progress on stderr')
    .action(async (o) => {
      const out = makeOutput<'train'>(Boolean(o.json));
      // Before any work: an output that cannot be written must not cost a training run.
      checkOutputPath(o.out, '--out');
      checkNotAnInput(o.out, '--out', [
        ['--data', o.data],
        ['--dev', o.dev],
      ]);
      const backbone = await loadBackbone(resolveBackboneSpec(o.backbone));
      checkSequenceLength(o.maxLength, backbone.config, '--max-length');
      const tokenizer = loadTokenizer(backbone.tokenizerDir);

      let trainRows = readRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l));
      const task: TaskInfo = inferTask(trainRows, o.data);
      let devRows: Example[] | undefined;
      let devFile: string | undefined = o.dev;
      if (o.dev) {
        devRows = readRows(o.dev, Boolean(o.skipInvalid), (l) => out.info(l));
        if (devRows.some((r) => r.textPair !== undefined) !== task.pair) {
          throw new SpartanError(
            `${o.dev}: its rows are ${task.pair ? 'single texts' : 'text pairs'}, but ${o.data}'s are ${task.pair ? 'text pairs' : 'single texts'}`,
          );
        }
        const unknown = task.task !== 'regression' ? checkDevLabels(devRows, task.labels, o.dev, task.task === 'multilabel') : [];
        if (unknown.length) throw new SpartanError(`${o.dev}: labels the training file does not have:\n${describeProblems(unknown)}`);
      } else if (o.devShare) {
        // The extension's dev share is the same function: one split for "share, seed" everywhere.
        const split = splitRows(trainRows, o.devShare, o.seed, task.task === 'regression');
        if (split.dev.length) {
          devRows = split.dev;
          trainRows = split.train;
          devFile = `${o.data} (held-out ${split.dev.length} rows)`;
        }
      }

      let init: TensorMap | undefined;
      let quantize: QuantizeMode = o.quantize ?? 'none';
      let method: MethodSpec = methodSpec(o.method as MethodName, { geometry: geometryOf(o), trainLayerNorms: o.trainLayerNorms });
      if (o.init) {
        const m = loadMemory(o.init, backbone);
        if (m.metadata.task !== task.task || JSON.stringify(m.metadata.labels) !== JSON.stringify(task.labels)) {
          throw new SpartanError(
            `${o.init} is a ${m.metadata.task} memory with labels ${JSON.stringify(m.metadata.labels)}, but ${o.data} is ${task.task} with labels ${JSON.stringify(task.labels)}`,
          );
        }
        init = m.tensors;
        quantize = o.quantize ?? quantizeFromMetadata(m.metadata, o.init);
        const stored = methodFromMetadata(m.metadata);
        method = methodSpec(stored.name, { geometry: stored.geometry, trainLayerNorms: o.trainLayerNorms ?? stored.trainLayerNorms });
      }

      // The method's tensors must fit in memory: refuse a geometry like --parents 100000 --children 100 up front.
      const methodValues = [...methodShapes(method, backbone.config).values()].reduce((sum, s) => sum + s.reduce((a, b) => a * b, 1), 0);
      if (methodValues > MAX_METHOD_VALUES) {
        throw new SpartanError(
          `--parents ${method.geometry.parents} × --children ${method.geometry.children} gives ${methodValues.toLocaleString('en')} values in the ${method.name} tensors; the limit is ${MAX_METHOD_VALUES.toLocaleString('en')}`,
        );
      }
      const cfg: TrainConfig = {
        ...sharedTrainConfig(o),
        method,
        epochs: o.epochs,
        steps: o.steps,
        optimizer: o.optimizer,
        lr: o.lr,
        seed: o.seed,
        shuffle: o.shuffle !== false,
        bucket: o.bucket !== false,
        threads: o.threads,
        patience: o.patience,
        metric: o.metric,
        quantize,
      };

      const abort = new AbortController();
      const onSignal = () => abort.abort(new SpartanError('training interrupted; the previous memory file (if any) is untouched'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);

      let lastPrint = 0;
      const onEvent = (e: TrainEvent) => {
        if (e.event === 'step') {
          const now = Date.now();
          const human =
            now - lastPrint > 2000 || e.step === e.steps
              ? `step ${e.step}/${e.steps}  epoch ${e.epoch}  loss ${e.loss.toFixed(4)}  lr ${e.lr.toExponential(2)}`
              : undefined;
          if (human) lastPrint = now;
          out.event(e, human);
        } else if (e.event === 'eval') {
          out.event(
            e,
            `epoch ${e.epoch}: ${Object.entries(e.metrics)
              .map(([k, v]) => `${k} ${v.toFixed(4)}`)
              .join('  ')}${e.best ? '  (best)' : ''}`,
          );
        } else if (e.event === 'start') {
          out.event(
            e,
            `training ${task.task} (${task.labels.length ? task.labels.join(', ') : 'score'}): ${e.examples} rows, ${e.steps} steps, ${e.trainableParameters.toLocaleString()} trained parameters${e.truncated ? `; ${e.truncated} rows truncated to ${cfg.maxLength} tokens` : ''}`,
          );
        } else {
          out.event(e);
        }
      };

      const result = await train(
        {
          backbone,
          tokenizer,
          task,
          train: trainRows,
          trainFile: o.data,
          dev: devRows,
          devFile,
          init,
          onEvent,
          signal: abort.signal,
          ownsBackbone: true,
        },
        cfg,
      );
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);

      // A SIGTERM/SIGINT during the last step, or a caller that is gone, means: do not replace the memory.
      if (abort.signal.aborted || parentGone())
        throw new SpartanError('training interrupted; the previous memory file (if any) is untouched');
      // A diverged run (NaN/Inf weights, e.g. from a huge --lr) must not replace a working memory with a useless one.
      try {
        checkFinite('the trained memory', result.tensors);
      } catch (e) {
        throw new SpartanError(`training diverged: ${(e as Error).message}; nothing was saved to ${o.out} (try a lower --lr)`);
      }
      const bytes = saveOrRescue(o.out, (file) =>
        saveMemory(
          file,
          result.tensors,
          trainedMemoryMetadata({
            backbone,
            task,
            cfg,
            result,
            trainRows: trainRows.length,
            devRows: devRows?.length ?? 0,
            extra: { init: o.init ?? null, quantize },
            calibration: result.calibration,
            provenance: provenanceOf({
              dataFile: o.data,
              trainRows: trainRows.length,
              dev: devRows ? { name: devFile!, file: o.dev, rows: devRows.length } : undefined,
              labelCounts: task.labelCounts,
              argv: process.argv.slice(2),
            }),
          }),
          o.dtype,
        ),
      );
      const summary = {
        memory: o.out,
        bytes,
        seconds: result.seconds,
        steps: result.steps,
        bestEpoch: result.bestEpoch,
        metrics: result.metrics,
        calibration: result.calibration,
        truncated: result.truncated,
        devTruncated: result.devTruncated,
        task: task.task,
        labels: task.labels,
        history: result.history,
      };
      const metricText = Object.entries(result.metrics)
        .map(([k, v]) => `${k} ${v.toFixed(4)}`)
        .join(', ');
      out.result(
        summary,
        `saved ${o.out} (${(bytes / 1024).toFixed(0)} KiB) after ${result.steps} steps in ${result.seconds.toFixed(1)} s${metricText ? `; dev ${metricText} (epoch ${result.bestEpoch})` : ''}`,
      );
    });
}
