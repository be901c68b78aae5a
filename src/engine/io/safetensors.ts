/**
 * safetensors read/write. Format: u64 little-endian header length N, N bytes of JSON header
 * ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}), then the data section;
 * offsets are relative to the data section. Everything read becomes float32 (the engine's only compute dtype).
 *
 * Every structural problem is a SpartanError naming the file, because these files come from users' disks and
 * downloads (truncated transfers, Git LFS pointers, hand edits) and "Unexpected end of JSON" helps nobody.
 */
import * as fs from 'node:fs';
import { openRegularFileSync } from './regularFile';
import { SpartanError, FloatTensor } from '../types';
import type { FileStamp } from '../onnx/graph';
import { bfloat16ToFloat32, float16ToFloat32, float32ToFloat16 } from './float16';

export interface SafetensorsTensor {
  /** The dtype as stored in the file (F32, F16 or BF16); `data` is always float32. */
  dtype: string;
  shape: number[];
  data: Float32Array;
  /** Where the stored bytes start in the file (or buffer), and how many there are. */
  offset: number;
  length: number;
}

export interface SafetensorsFile {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsTensor>;
  /** The file read (readSafetensors): what identifies this version of it, taken from the open descriptor. */
  stamp?: FileStamp;
}

export interface ReadSafetensorsOptions {
  /**
   * Decides which tensors to decode (default: all). Skipped tensors are still validated structurally but their
   * dtype may be anything, so a checkpoint's I64 `position_ids` buffer or an unused head need not be supported.
   */
  include?: (name: string, dtype: string) => boolean;
}

/** Header entry after validation; `begin`/`end` are absolute offsets in the file. */
interface HeaderEntry {
  name: string;
  dtype: string;
  shape: number[];
  begin: number;
  end: number;
}

interface ParsedHeader {
  metadata: Record<string, string>;
  entries: HeaderEntry[]; // in header order
  dataStart: number;
}

const SUPPORTED_READ_DTYPES = ['F32', 'F16', 'BF16'];

/** Bytes per element of every dtype the format defines, so sizes can be checked even for tensors we skip. */
const DTYPE_SIZES: Record<string, number> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  I64: 8,
  U64: 8,
  F64: 8,
};

/** Headers above this are certainly not real files (the reference implementation caps at 100 MB too). */
const MAX_HEADER_BYTES = 100_000_000;

function fail(path: string, problem: string): never {
  throw new SpartanError(`${path}: ${problem}`);
}

function numel(shape: number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Validates the header bytes against the file size; shared by the buffer and the file-descriptor readers. */
function parseHeader(path: string, fileSize: number, readPrefix: (start: number, length: number) => Buffer): ParsedHeader {
  if (fileSize < 8) {
    fail(path, `is ${fileSize} bytes long, too short to be a safetensors file (it needs at least an 8-byte header length)`);
  }
  const headerLenBig = readPrefix(0, 8).readBigUInt64LE(0);
  if (headerLenBig > BigInt(fileSize - 8)) {
    fail(
      path,
      `header length ${headerLenBig} runs beyond the end of the file (${fileSize} bytes): the file is truncated or is not a safetensors file` +
        (fileSize < 1024 ? ' (a small file like this may be a Git LFS pointer: run `git lfs pull`)' : ''),
    );
  }
  const headerLen = Number(headerLenBig);
  if (headerLen > MAX_HEADER_BYTES) fail(path, `header length ${headerLen} is implausibly large: not a safetensors file`);
  const dataStart = 8 + headerLen;
  const dataLen = fileSize - dataStart;

  let header: unknown;
  try {
    header = JSON.parse(readPrefix(8, headerLen).toString('utf8'));
  } catch (e) {
    fail(path, `has an invalid JSON header (${(e as Error).message}): the file is corrupted or not a safetensors file`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    fail(path, 'has a JSON header that is not an object: not a safetensors file');
  }

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) fail(path, '__metadata__ in the header is not an object');
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string') fail(path, `__metadata__ value "${k}" is not a string`);
        metadata[k] = v;
      }
      continue;
    }
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    if (info === null || typeof info !== 'object') fail(path, `tensor "${name}" has no {dtype, shape, data_offsets} entry in the header`);
    const { dtype, shape, data_offsets: offsets } = info;
    if (typeof dtype !== 'string') fail(path, `tensor "${name}" has no dtype`);
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(path, `tensor "${name}" has an invalid shape ${JSON.stringify(shape)}`);
    }
    if (
      !Array.isArray(offsets) ||
      offsets.length !== 2 ||
      !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
      offsets[0] > offsets[1]
    ) {
      fail(path, `tensor "${name}" has invalid data_offsets ${JSON.stringify(offsets)}`);
    }
    const [begin, end] = offsets as number[];
    const itemSize = DTYPE_SIZES[dtype];
    if (itemSize === undefined) fail(path, `tensor "${name}" has unknown dtype "${dtype}"`);
    const expectedBytes = numel(shape as number[]) * itemSize;
    if (end - begin !== expectedBytes) {
      fail(
        path,
        `tensor "${name}" data_offsets [${begin}, ${end}] span ${end - begin} bytes but dtype ${dtype} with shape ` +
          `[${(shape as number[]).join(', ')}] needs ${expectedBytes} bytes: the header is corrupted`,
      );
    }
    entries.push({ name, dtype, shape: (shape as number[]).slice(), begin: dataStart + begin, end: dataStart + end });
  }

  // Checked against the furthest-reaching tensor so a cut-off download reads as one clear "truncated".
  let last: HeaderEntry | undefined;
  for (const e of entries) if (!last || e.end > last.end) last = e;
  if (last && last.end - dataStart > dataLen) {
    fail(
      path,
      `is truncated or has out-of-range offsets: tensor "${last.name}" needs bytes ${last.begin - dataStart}..${last.end - dataStart} ` +
        `of the data section but the file holds only ${dataLen} data bytes`,
    );
  }

  // Header order is arbitrary JSON order, so sort to find overlaps (which would alias two tensors' data).
  const byOffset = entries.filter((e) => e.end > e.begin).sort((a, b) => a.begin - b.begin);
  for (let i = 1; i < byOffset.length; i++) {
    if (byOffset[i].begin < byOffset[i - 1].end) {
      fail(path, `tensors "${byOffset[i - 1].name}" and "${byOffset[i].name}" have overlapping data_offsets: the header is corrupted`);
    }
  }
  return { metadata, entries, dataStart };
}

function checkReadable(path: string, e: HeaderEntry): void {
  if (!SUPPORTED_READ_DTYPES.includes(e.dtype)) {
    fail(path, `tensor "${e.name}" has dtype ${e.dtype}, which is not supported (supported: ${SUPPORTED_READ_DTYPES.join(', ')})`);
  }
}

/** Decodes `bytes` (exactly the tensor's bytes) to float32. Copies, so the result never aliases a file buffer. */
function decode(dtype: string, bytes: Uint8Array, count: number): Float32Array {
  if (dtype === 'F32') {
    const out = new Float32Array(count);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  // Typed-array views need 2-byte alignment; file offsets have none guaranteed, so copy when unaligned.
  let halves: Uint16Array;
  if (bytes.byteOffset % 2 === 0) {
    halves = new Uint16Array(bytes.buffer, bytes.byteOffset, count);
  } else {
    halves = new Uint16Array(count);
    new Uint8Array(halves.buffer).set(bytes);
  }
  return dtype === 'F16' ? float16ToFloat32(halves) : bfloat16ToFloat32(halves);
}

/** Parses a whole safetensors file held in memory. `path` is only used in error messages. */
export function parseSafetensors(buf: Buffer, path: string, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  const header = parseHeader(path, buf.length, (start, length) => buf.subarray(start, start + length));
  const tensors = new Map<string, SafetensorsTensor>();
  for (const e of header.entries) {
    if (options.include && !options.include(e.name, e.dtype)) continue;
    checkReadable(path, e);
    const data = decode(e.dtype, buf.subarray(e.begin, e.end), numel(e.shape));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data, offset: e.begin, length: e.end - e.begin });
  }
  return { metadata: header.metadata, tensors };
}

/**
 * Reads a safetensors file tensor by tensor (never the whole file at once, so a 500 MB F32 checkpoint costs its
 * float32 size in memory, not twice that).
 */
export function readSafetensors(path: string, options: ReadSafetensorsOptions = {}): SafetensorsFile {
  // Regular files only: a directory, FIFO or device is refused by name before any read (see regularFile.ts).
  const { fd, size } = openRegularFileSync(path);
  try {
    const readExact = (start: number, length: number): Buffer => {
      const out = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const n = fs.readSync(fd, out, done, length - done, start + done);
        if (n === 0) fail(path, `ended at byte ${start + done} while reading; the file was truncated while being read`);
        done += n;
      }
      return out;
    };
    const header = parseHeader(path, size, readExact);
    const tensors = new Map<string, SafetensorsTensor>();
    for (const e of header.entries) {
      if (options.include && !options.include(e.name, e.dtype)) continue;
      checkReadable(path, e);
      const count = numel(e.shape);
      let data: Float32Array;
      if (e.dtype === 'F32') {
        // Read straight into the result: no intermediate copy.
        data = new Float32Array(count);
        const target = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
        let done = 0;
        while (done < target.length) {
          const n = fs.readSync(fd, target, done, target.length - done, e.begin + done);
          if (n === 0) fail(path, `ended while reading tensor "${e.name}": the file is truncated`);
          done += n;
        }
      } else {
        data = decode(e.dtype, readExact(e.begin, e.end - e.begin), count);
      }
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data, offset: e.begin, length: e.end - e.begin });
    }
    const st = fs.fstatSync(fd);
    return { metadata: header.metadata, tensors, stamp: { size: st.size, mtimeMs: st.mtimeMs, ino: st.ino } };
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Encodes tensors (in the map's order) as a safetensors file. The header is padded with spaces to a multiple of 8
 * so the data section starts 8-byte aligned; tensors are contiguous (the format forbids holes) and all share one
 * dtype, so each one is aligned to its element size.
 */
export function encodeSafetensors(
  tensors: Map<string, FloatTensor>,
  dtype: 'float16' | 'float32',
  metadata: Record<string, string> = {},
): Buffer {
  const itemSize = dtype === 'float16' ? 2 : 4;
  const stDtype = dtype === 'float16' ? 'F16' : 'F32';
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== 'string') throw new SpartanError(`safetensors metadata value "${k}" must be a string`);
    }
    header.__metadata__ = metadata;
  }
  let offset = 0;
  for (const [name, t] of tensors) {
    if (name === '__metadata__') throw new SpartanError('"__metadata__" cannot be used as a tensor name');
    const n = numel(t.shape);
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0) || n !== t.data.length) {
      throw new SpartanError(`tensor "${name}" has shape [${t.shape.join(', ')}] but ${t.data.length} values`);
    }
    header[name] = { dtype: stDtype, shape: t.shape, data_offsets: [offset, offset + n * itemSize] };
    offset += n * itemSize;
  }
  let headerBytes = Buffer.from(JSON.stringify(header), 'utf8');
  const padded = Math.ceil(headerBytes.length / 8) * 8;
  if (padded !== headerBytes.length) headerBytes = Buffer.concat([headerBytes, Buffer.alloc(padded - headerBytes.length, 0x20)]);

  const out = Buffer.alloc(8 + headerBytes.length + offset);
  out.writeBigUInt64LE(BigInt(headerBytes.length), 0);
  headerBytes.copy(out, 8);
  let pos = 8 + headerBytes.length; // a multiple of 8, so typed-array views below are aligned
  for (const t of tensors.values()) {
    if (dtype === 'float32') {
      new Float32Array(out.buffer, out.byteOffset + pos, t.data.length).set(t.data);
    } else {
      float32ToFloat16(t.data, new Uint16Array(out.buffer, out.byteOffset + pos, t.data.length));
    }
    pos += t.data.length * itemSize;
  }
  return out;
}
