/** `spartan export`: one standalone ONNX task model (backbone + memory) for other runtimes. */
import * as fs from 'fs';
import * as path from 'path';
import { Command } from 'commander';
import * as ort from 'onnxruntime-node';
import {
  compileStandalone,
  TaskModel,
  methodFromMetadata,
  graphOptions,
  layerParams,
  writeFileAtomic,
  checkNotAnInput,
  checkOutputPath,
} from '../../engine';
import { makeOutput } from '../output';
import { defaultThreads, intOption, resolveBackboneSpec } from '../options';

export function registerExport(program: Command): void {
  program
    .command('export')
    .description('write one standalone ONNX model (inputs input_ids, attention_mask; outputs logits[, probabilities])')
    .requiredOption('--memory <file>', 'the task memory (.safetensors)')
    .requiredOption('--onnx <file>', 'output .onnx file')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone the memory was trained for', 'embedded')
    .option('--threads <n>', 'intra-op threads for the load check', intOption(1), defaultThreads())
    .option('--json', 'JSON output')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      checkOutputPath(o.onnx, '--onnx'); // before the load and compile
      checkNotAnInput(o.onnx, '--onnx', [['--memory', o.memory]]);
      const model = await TaskModel.load({ backbone: resolveBackboneSpec(o.backbone), memory: o.memory, threads: o.threads });
      try {
        const meta = model.metadata;
        const opts = graphOptions(model.backbone, methodFromMetadata(meta), meta.task, model.numLabels);
        const bytes = compileStandalone(opts, layerParams(model.backbone, model.tensors), model.calibration.temperature);
        fs.mkdirSync(path.dirname(path.resolve(o.onnx)), { recursive: true });
        writeFileAtomic(o.onnx, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        // Check that the file loads in ONNX Runtime before reporting success.
        const check = await ort.InferenceSession.create(o.onnx);
        await check.release();
        out.result(
          {
            onnx: path.resolve(o.onnx),
            bytes: bytes.byteLength,
            inputs: ['input_ids', 'attention_mask'],
            outputs: meta.task !== 'regression' ? ['logits', 'probabilities'] : ['logits'],
            labels: meta.labels,
            temperature: model.calibration.temperature,
            ...(meta.task === 'multilabel' ? { thresholds: model.calibration.thresholds } : {}),
          },
          `wrote ${o.onnx} (${(bytes.byteLength / 1e6).toFixed(1)} MB); labels: ${meta.labels.join(', ') || 'regression score'}`,
        );
      } finally {
        await model.close();
      }
    });
}
