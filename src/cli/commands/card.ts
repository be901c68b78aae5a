/** `spartan card`: writes a Markdown model card beside a memory (task.safetensors → task.md), atomically. */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { loadMemory, modelCard, sha256OfFile, writeFileAtomic } from '../../engine';
import type { CardResult } from '../../protocol/results';
import { makeOutput } from '../output';

/** The card's path: the memory's with `.md` in place of `.safetensors`. */
export function cardPath(memory: string): string {
  return memory.replace(/\.safetensors$/i, '') + '.md';
}

export function registerCard(program: Command): void {
  program
    .command('card')
    .description(
      'write a Markdown model card beside a memory: data, labels, backbone, method, metrics with calibration, the command that reproduces it',
    )
    .requiredOption('--memory <file>', 'the task memory (.safetensors)')
    .option('--out <file>', 'where to write the card (default: beside the memory, .md)')
    .option('--json', 'JSON result on stdout')
    .action((o) => {
      const out = makeOutput(Boolean(o.json));
      const { metadata } = loadMemory(o.memory);
      const text = modelCard(path.basename(o.memory), metadata, sha256OfFile(o.memory), fs.statSync(o.memory).size);
      const file = o.out ?? cardPath(o.memory);
      writeFileAtomic(file, Buffer.from(text, 'utf8'));
      const result: CardResult = { card: path.resolve(file), bytes: Buffer.byteLength(text) };
      out.result(result, `wrote ${file}`);
    });
}
