/**
 * Opening files a user named, as regular files only. A directory, a FIFO, a socket or a device given where a
 * file is expected must be refused with a one-line message, not read: a FIFO with no writer blocks `open` forever
 * (so we open with O_NONBLOCK and check with fstat before reading), `/dev/zero` never ends, and a directory only
 * fails at the first read with an EISDIR that names no file.
 */
import * as fs from 'node:fs';
import { promises as fsp } from 'node:fs';
import { SpartanError } from '../types';
import { mib } from '../limits';

const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0);

/** "is a directory", "is a FIFO", … for a stat that is not a regular file. */
export function describeNonRegular(st: fs.Stats): string {
  if (st.isDirectory()) return 'is a directory, not a file';
  if (st.isFIFO()) return 'is a named pipe (FIFO), not a regular file';
  if (st.isSocket()) return 'is a socket, not a regular file';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'is a device, not a regular file';
  return 'is not a regular file';
}

/** One line for an fs error about `path` (ENOENT → "file not found", …). */
export function describeFsError(path: string, e: unknown, doing = 'cannot be read'): string {
  const err = e as NodeJS.ErrnoException;
  switch (err?.code) {
    case 'ENOENT':
      return `${path}: file not found`;
    case 'EACCES':
    case 'EPERM':
      return `${path}: permission denied`;
    case 'EISDIR':
      return `${path}: is a directory, not a file`;
    case 'ENOTDIR':
      return `${path}: a part of the path is not a folder`;
    case 'ELOOP':
      return `${path}: too many levels of symbolic links`;
    case 'ENAMETOOLONG':
      return `${path}: file name too long`;
    case 'ENOSPC':
      return `${path}: no space left on the device`;
    case 'EDQUOT':
      return `${path}: disk quota exceeded`;
    case 'EROFS':
      return `${path}: the file system is read-only`;
    default:
      return `${path}: ${doing} (${err?.code ?? (err as Error)?.message ?? String(e)})`;
  }
}

/** Opens `path` for reading; throws a SpartanError unless it is a regular file. Returns the fd and its size. */
export function openRegularFileSync(path: string): { fd: number; size: number } {
  let fd: number;
  try {
    fd = fs.openSync(path, OPEN_FLAGS);
  } catch (e) {
    throw new SpartanError(describeFsError(path, e));
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    throw new SpartanError(`${path}: ${describeNonRegular(st)}`);
  }
  return { fd, size: st.size };
}

/** Reads a whole regular file of at most `maxBytes` (checked before reading anything). */
export function readRegularFileSync(path: string, maxBytes: number): Buffer {
  const { fd, size } = openRegularFileSync(path);
  try {
    if (size > maxBytes) throw new SpartanError(`${path}: the file is ${mib(size)}; the limit is ${mib(maxBytes)}`);
    const out = Buffer.allocUnsafe(size);
    let done = 0;
    while (done < size) {
      const n = fs.readSync(fd, out, done, size - done, done);
      if (n === 0) break; // shrank while being read: take what is there
      done += n;
    }
    return done === size ? out : out.subarray(0, done);
  } catch (e) {
    if (e instanceof SpartanError) throw e;
    throw new SpartanError(describeFsError(path, e));
  } finally {
    fs.closeSync(fd);
  }
}

/** The asynchronous form of readRegularFileSync (the size is checked before anything is read). */
export async function readRegularFileAsync(path: string, maxBytes: number): Promise<Buffer> {
  const first = await readRegularFileRange(path, 0, 0);
  if (first.size > maxBytes) throw new SpartanError(`${path}: the file is ${mib(first.size)}; the limit is ${mib(maxBytes)}`);
  return (await readRegularFileRange(path, 0, first.size)).bytes;
}

/**
 * The asynchronous form, for the extension host (which must never block): opens without blocking, refuses
 * anything but a regular file, and reads at most `length` bytes from `start`.
 */
export async function readRegularFileRange(
  path: string,
  start: number,
  length: number,
): Promise<{ bytes: Buffer; size: number; mtime: Date }> {
  let fh: fsp.FileHandle;
  try {
    fh = await fsp.open(path, OPEN_FLAGS);
  } catch (e) {
    throw new SpartanError(describeFsError(path, e));
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new SpartanError(`${path}: ${describeNonRegular(st)}`);
    const want = Math.max(0, Math.min(length, st.size - start));
    const bytes = Buffer.alloc(want);
    let done = 0;
    while (done < want) {
      const { bytesRead } = await fh.read(bytes, done, want - done, start + done);
      if (bytesRead === 0) break;
      done += bytesRead;
    }
    return { bytes: bytes.subarray(0, done), size: st.size, mtime: st.mtime };
  } finally {
    await fh.close();
  }
}
