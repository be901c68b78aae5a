/**
 * `spartan serve`: a long-lived worker answering JSON-lines requests on stdin, one JSON line per answer on stdout.
 * The VS Code extension keeps one running so that Classify Selection does not pay for starting Node, loading the
 * backbone and building a session on every call; loaded task models are cached by (backbone, memory, mtime).
 *
 *   → {"id": 1, "method": "classify", "params": {"backbone": "embedded", "memory": "m.safetensors", "text": "…", "textPair": "…"}}
 *   ← {"id": 1, "result": {"label": "pos", "probabilities": {…}, "milliseconds": 12.3}}   or   {"id": 1, "error": "…"}
 *   → {"id": 2, "method": "shutdown"}
 *
 * Whatever a client sends, the worker answers every line and keeps going: a request that is not a JSON object, has
 * a bad field, is over the size limit or takes longer than the request timeout gets an error answer naming the
 * problem. All cached task models share one loaded backbone per backbone spec (a task model adds only its own small
 * tensors and a session), and at most SERVE_CACHE_ENTRIES stay loaded, least recently used evicted.
 */
import * as fs from 'fs';
import { Command } from 'commander';
import {
  Backbone,
  loadBackbone,
  TaskModel,
  SpartanError,
  MAX_REQUEST_BYTES,
  SERVE_CACHE_ENTRIES,
  SERVE_REQUEST_TIMEOUT_MS,
  mib,
  textSizeProblem,
  describeNonRegular,
} from '../../engine';
import { defaultThreads, intOption, quantizeOption, resolveBackboneSpec } from '../options';
import { boundedLines } from '../serveLines';
import type { ServeId, ServeProtocol, ServeResponse } from '../../protocol/commands';

type Id = ServeId;

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The request's id if it is one a client can match (number or string), else null. */
function idOf(req: unknown): Id {
  if (!isPlainObject(req)) return null;
  const id = req.id;
  return typeof id === 'number' || typeof id === 'string' ? id : null;
}

/** Rejects after `ms` unless `work` settles first (the work itself cannot be cancelled; its answer is dropped). */
function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SpartanError(`request timed out after ${ms / 1000} s`)), ms);
  });
  return Promise.race([work, timeout]).finally(() => clearTimeout(timer));
}

export function registerServe(program: Command): void {
  program
    .command('serve')
    .description('answer JSON-lines classify requests on stdin (used by the VS Code extension)')
    .option('--threads <n>', 'intra-op threads', intOption(1), defaultThreads())
    .addOption(quantizeOption('backbone precision of every model (default: what each memory was trained with)'))
    .option('--request-timeout <ms>', 'answer a request that takes longer with an error', intOption(1), SERVE_REQUEST_TIMEOUT_MS)
    .option('--json', 'accepted for symmetry; output is always JSON lines')
    .action(async (o) => {
      const backbones = new Map<string, Promise<Backbone>>();
      const cache = new Map<string, TaskModel>(); // insertion order = least recently used first
      const backboneFor = (spec: string): Promise<Backbone> => {
        let b = backbones.get(spec);
        if (!b) {
          b = loadBackbone(spec);
          b.catch(() => backbones.delete(spec)); // a failed load is retried by the next request
          backbones.set(spec, b);
        }
        return b;
      };
      const modelFor = async (params: Record<string, unknown>): Promise<TaskModel> => {
        if (typeof params.memory !== 'string' || params.memory === '')
          throw new SpartanError('params.memory must be the path of a memory file');
        if (params.backbone !== undefined && typeof params.backbone !== 'string')
          throw new SpartanError('params.backbone must be a string');
        const memory = params.memory;
        const spec = resolveBackboneSpec(params.backbone);
        const stat = fs.statSync(memory, { throwIfNoEntry: false });
        if (!stat) throw new SpartanError(`${memory}: memory file not found`);
        if (!stat.isFile()) throw new SpartanError(`${memory}: ${describeNonRegular(stat)}`);
        const key = `${spec}\0${memory}\0${stat.mtimeMs}\0${stat.size}`;
        let model = cache.get(key);
        if (model) {
          cache.delete(key);
          cache.set(key, model);
          return model;
        }
        for (const [k, m] of cache)
          if (k.split('\0')[1] === memory) {
            cache.delete(k);
            await m.close();
          }
        model = await TaskModel.load({ backbone: await backboneFor(spec), memory, threads: o.threads, quantize: o.quantize });
        cache.set(key, model);
        while (cache.size > SERVE_CACHE_ENTRIES) {
          const [oldest, m] = cache.entries().next().value as [string, TaskModel];
          cache.delete(oldest);
          await m.close();
        }
        return model;
      };
      // `params` is checked field by field here (what a valid one holds: ServeClassifyParams in the protocol).
      const classify = async (params: Record<string, unknown>): Promise<ServeProtocol['classify']['result']> => {
        if (typeof params.text !== 'string') throw new SpartanError('params.text must be a string');
        if (params.textPair !== undefined && typeof params.textPair !== 'string')
          throw new SpartanError('params.textPair must be a string');
        for (const key of ['text', 'textPair']) {
          const problem = typeof params[key] === 'string' ? textSizeProblem(params[key], `params.${key}`) : undefined;
          if (problem) throw new SpartanError(problem);
        }
        const model = await modelFor(params);
        const pair = Boolean(model.metadata.hyperparameters.pair);
        if (pair && typeof params.textPair !== 'string')
          throw new SpartanError(`${String(params.memory)} is a text-pair task: give params.textPair`);
        if (!pair && params.textPair !== undefined)
          throw new SpartanError(`${String(params.memory)} is a single-text task: params.textPair is not used by it`);
        const t0 = performance.now();
        const [p] = await model.predict([{ text: params.text, textPair: params.textPair }]);
        return { ...p, task: model.metadata.task, milliseconds: performance.now() - t0 };
      };

      const reply = (value: ServeResponse) => process.stdout.write(JSON.stringify(value) + '\n');
      const lines = boundedLines(process.stdin, MAX_REQUEST_BYTES, (bytes) =>
        reply({ id: null, error: `request line is ${mib(bytes)}; the limit is ${mib(MAX_REQUEST_BYTES)}` }),
      );
      // Requests are answered one at a time, in order: ONNX Runtime runs on this thread anyway.
      for await (const line of lines) {
        if (!line.trim()) continue;
        let req: unknown;
        try {
          req = JSON.parse(line);
        } catch (e) {
          reply({ id: null, error: `invalid JSON request: ${(e as Error).message}` });
          continue;
        }
        const id = idOf(req);
        try {
          if (!isPlainObject(req))
            throw new SpartanError('a request must be a JSON object like {"id": 1, "method": "classify", "params": {…}}');
          if (req.method === 'shutdown') {
            const bye: ServeResponse<'shutdown'> = { id, result: { ok: true } };
            reply(bye);
            break;
          }
          if (req.method !== 'classify')
            throw new SpartanError(`unknown method ${JSON.stringify(req.method)}: use "classify" or "shutdown"`);
          const params = req.params === undefined ? {} : req.params;
          if (!isPlainObject(params)) throw new SpartanError('params must be a JSON object');
          reply({ id, result: await withTimeout(classify(params), o.requestTimeout) });
        } catch (e) {
          reply({ id, error: e instanceof Error ? e.message : String(e) });
        }
      }
      for (const m of cache.values()) await m.close();
    });
}
