/** Where a memory came from (metadata key `provenance`): the data files by sha256, label counts, the command. */
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import type { Provenance } from './memoryFile';

export function sha256OfFile(file: string): string {
  return createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

export function provenanceOf(opts: {
  dataFile: string;
  trainRows: number;
  /** The dev set's description (a file, or "F (held-out N rows)") and, when it is a file, its path. */
  dev?: { name: string; file?: string; rows: number };
  labelCounts: Record<string, number>;
  argv: string[];
}): Provenance {
  return {
    data: { file: opts.dataFile, sha256: sha256OfFile(opts.dataFile), rows: opts.trainRows },
    ...(opts.dev
      ? { dev: { file: opts.dev.name, ...(opts.dev.file ? { sha256: sha256OfFile(opts.dev.file) } : {}), rows: opts.dev.rows } }
      : {}),
    labelCounts: { ...opts.labelCounts },
    command: ['spartan', ...opts.argv],
  };
}
