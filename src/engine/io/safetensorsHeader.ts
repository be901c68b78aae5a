/**
 * Reading only the JSON header of a safetensors file (8-byte little-endian length + JSON), for listings: the
 * extension's status bar and pickers show a memory's task and labels without loading its tensors. Regular files
 * only (a FIFO named like a memory must not block the reader), and the header is bounded (a 100 MB header from a
 * hostile file must not cost hundreds of MB on every refresh). The asynchronous form is the one for the VS Code
 * extension host, which must never block.
 */
import * as fs from 'node:fs';
import { SpartanError } from '../types';
import { MAX_MEMORY_HEADER_BYTES, mib } from '../limits';
import { openRegularFileSync, readRegularFileRange } from './regularFile';

function headerLength(file: string, lenBuf: Buffer, size: number, maxBytes: number): number {
  if (lenBuf.length < 8) throw new SpartanError(`${file}: not a safetensors file (too short)`);
  const len = lenBuf.readBigUInt64LE(0);
  if (len < 2n || len + 8n > BigInt(size)) throw new SpartanError(`${file}: not a safetensors file (bad header length)`);
  if (len > BigInt(maxBytes)) throw new SpartanError(`${file}: its header is ${mib(Number(len))}; the limit is ${mib(maxBytes)}`);
  return Number(len);
}

function parseHeaderJson(file: string, bytes: Buffer): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new SpartanError(`${file}: not a safetensors file (its header is not JSON: ${(e as Error).message})`);
  }
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new SpartanError(`${file}: not a safetensors file (header is not an object)`);
  return v as Record<string, unknown>;
}

/** The header object, read synchronously (CLI-side callers); throws a one-line SpartanError. */
export function readSafetensorsHeaderSync(file: string, maxBytes = MAX_MEMORY_HEADER_BYTES): Record<string, unknown> {
  const { fd, size } = openRegularFileSync(file);
  try {
    const lenBuf = Buffer.alloc(8);
    const got = fs.readSync(fd, lenBuf, 0, 8, 0);
    const len = headerLength(file, lenBuf.subarray(0, got), size, maxBytes);
    const hdr = Buffer.alloc(len);
    let done = 0;
    while (done < len) {
      const n = fs.readSync(fd, hdr, done, len - done, 8 + done);
      if (n === 0) throw new SpartanError(`${file}: not a safetensors file (truncated header)`);
      done += n;
    }
    return parseHeaderJson(file, hdr);
  } finally {
    fs.closeSync(fd);
  }
}

/** The header object plus the file's size and mtime, read without blocking the event loop. */
export async function readSafetensorsHeaderAsync(
  file: string,
  maxBytes = MAX_MEMORY_HEADER_BYTES,
): Promise<{ header: Record<string, unknown>; size: number; mtime: Date }> {
  const first = await readRegularFileRange(file, 0, 8);
  const len = headerLength(file, first.bytes, first.size, maxBytes);
  const body = await readRegularFileRange(file, 8, len);
  if (body.bytes.length < len) throw new SpartanError(`${file}: not a safetensors file (truncated header)`);
  return { header: parseHeaderJson(file, body.bytes), size: first.size, mtime: first.mtime };
}
