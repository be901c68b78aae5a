/** `spartan download`: fetch a backbone from the Hugging Face hub (resumable, sha256-checked). */
import * as path from 'path';
import { Command } from 'commander';
import { downloadModel, loadBackbone } from '../../engine';
import { makeOutput } from '../output';
import { intOption } from '../options';

export function registerDownload(program: Command): void {
  program
    .command('download')
    .description('download a RoBERTa backbone from the Hugging Face hub (endpoint: $SPARTAN_HF_ENDPOINT)')
    .option('--repo <id>', 'hub repository', 'FacebookAI/roberta-base')
    .option('--revision <rev>', 'branch, tag or commit', 'main')
    .requiredOption('--dest <dir>', 'destination folder')
    .option('--timeout <seconds>', 'give up on a server that sends no response (or no data) for this long; retried twice', intOption(1))
    .option('--allow-unverified', 'accept files the server sends no checksum for (refused by default)')
    .option('--max-file-mb <n>', 'refuse any file larger than this (default 4096)', intOption(1))
    .option('--json', 'JSON output and progress events')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const abort = new AbortController();
      process.once('SIGINT', () => abort.abort());
      process.once('SIGTERM', () => abort.abort());
      let last = 0;
      const result = await downloadModel({
        repo: o.repo,
        revision: o.revision,
        dest: o.dest,
        token: process.env.HF_TOKEN,
        signal: abort.signal,
        ...(o.timeout !== undefined ? { connectTimeoutMs: o.timeout * 1000, idleTimeoutMs: o.timeout * 1000 } : {}),
        allowUnverified: Boolean(o.allowUnverified),
        ...(o.maxFileMb !== undefined ? { maxFileBytes: o.maxFileMb * 1024 * 1024 } : {}),
        onProgress: (e) => {
          const now = Date.now();
          if (now - last < 250 && e.received !== e.total) return;
          last = now;
          out.event(
            { event: 'progress', ...e },
            `${e.file}: ${(e.received / 1e6).toFixed(1)}${e.total ? ` / ${(e.total / 1e6).toFixed(1)}` : ''} MB`,
          );
        },
      });
      // A download is only useful if it loads: validate names and shapes now, not at the first fine-tune.
      const backbone = await loadBackbone(result.dir);
      out.result(
        { dir: path.resolve(result.dir), files: result.files, layers: backbone.config.numLayers, hidden: backbone.config.hiddenSize },
        `downloaded ${o.repo}@${o.revision} to ${result.dir} (${backbone.config.numLayers} layers, hidden ${backbone.config.hiddenSize})`,
      );
    });
}
