/**
 * `spartan routes`: which parent cells of a SPARTAN memory each label's tokens are routed to at one layer (the
 * paper's Figure 2). JSON output `{ layer, parents, topK, labels, tokens, counts, meanGate }` is what the
 * benchmark panel draws as a heat map.
 */
import { Command } from 'commander';
import { parentRouting, loadMemory, loadBackbone, methodFromMetadata, loadTokenizer, maxLengthOf, SpartanError } from '../../engine';
import { makeOutput } from '../output';
import { addMemoryRunOptions, intOption, resolveBackboneSpec } from '../options';
import { readRows } from '../rows';

export function registerRoutes(program: Command): void {
  const cmd = program
    .command('routes')
    .description("parent specialisation: per label, how often each parent is among a token's top-K at one layer, and its mean gate")
    .requiredOption('--layer <n>', 'encoder layer (0-based)', intOption(0));
  addMemoryRunOptions(cmd, { data: 'labelled rows (JSONL)', use: 'use', memory: 'a SPARTAN memory (.safetensors)' })
    .option('--json', 'one JSON object on stdout')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      const backbone = await loadBackbone(resolveBackboneSpec(o.backbone));
      const { tensors, metadata } = loadMemory(o.memory, backbone);
      if (metadata.tokenizerHash && backbone.tokenizerHash && metadata.tokenizerHash !== backbone.tokenizerHash) {
        throw new SpartanError(`${o.memory} was trained with a different tokenizer than ${backbone.id}'s`);
      }
      const rows = readRows(o.data, Boolean(o.skipInvalid), (l) => out.info(l), 'use');
      const report = await parentRouting({
        backbone,
        tokenizer: loadTokenizer(backbone.tokenizerDir),
        method: methodFromMetadata(metadata),
        task: metadata.task,
        memoryLabels: metadata.labels,
        tensors,
        rows,
        file: o.data,
        layer: o.layer,
        maxLength: maxLengthOf(metadata),
        batchSize: o.batchSize,
        threads: o.threads,
      });
      const width = Math.max(5, ...report.labels.map((l) => l.length));
      const header = `${'label'.padEnd(width)}  tokens  ${Array.from({ length: report.parents }, (_, p) => `p${p}`.padStart(5)).join('')}`;
      const lines = report.labels.map(
        (l, k) =>
          `${l.padEnd(width)}  ${String(report.tokens[k]).padStart(6)}  ${report.counts[k].map((v) => v.toFixed(2).padStart(5)).join('')}`,
      );
      out.result(
        report,
        [`layer ${report.layer}: share of tokens whose top-${report.topK} parents include each parent`, header, ...lines].join('\n'),
      );
    });
}
