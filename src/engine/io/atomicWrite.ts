/**
 * Atomic file replacement: a crash, a full disk or an exception half-way leaves either the old file or the new
 * one, never a torn mix. This matters for memory files: a user's trained memory must not be destroyed by an
 * interrupted re-save.
 *
 * Synchronous on purpose: callers (saveMemory, saveBackboneDir) are synchronous and the files are small enough
 * that blocking is cheaper than making every caller async.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { SpartanError } from '../types';
import { describeFsError, describeNonRegular } from './regularFile';

export interface WriteFileAtomicOptions {
  /**
   * Called after the temporary file is written and synced, before it is renamed over the target. For tests, to
   * inject a failure at the worst moment; whatever it throws is handled like any other write error.
   */
  beforeRename?: (tempPath: string) => void;
}

/** `.NAME.tmp-PID-RANDOM` next to the target: dot-prefixed so it hides from listings; pid + random never collide. */
export function tempPathFor(target: string, pid = process.pid): string {
  const abs = path.resolve(target);
  return path.join(path.dirname(abs), `.${path.basename(abs)}.tmp-${pid}-${randomBytes(6).toString('hex')}`);
}

/** Whether a process with this id exists (EPERM: it exists but belongs to someone else). */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Removes temp files of earlier writes to `target` whose writer is gone (killed with SIGKILL or by the OOM killer
 * mid-save): nothing else would ever delete them. Best effort; a live writer's temp file is left alone.
 */
export function removeStaleTempFiles(target: string): void {
  const abs = path.resolve(target);
  const dir = path.dirname(abs);
  const prefix = `.${path.basename(abs)}.tmp-`;
  let names: string[];
  try {
    names = fs.readdirSync(dir).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const n of names) {
    const m = /^(\d+)-[0-9a-f]{12}$/.exec(n.slice(prefix.length));
    if (!m || Number(m[1]) === process.pid || processAlive(Number(m[1]))) continue;
    try {
      const st = fs.lstatSync(path.join(dir, n));
      if (st.isFile()) fs.rmSync(path.join(dir, n), { force: true });
    } catch {
      // best effort
    }
  }
}

/**
 * Where a write to `target` really goes and what the existing file there is: a symlink is written through (its
 * target file is replaced, the link kept); anything but a regular file is refused, since renaming over a FIFO or
 * a device would silently swap it for a regular file.
 */
export function resolveWriteTarget(target: string): { file: string; existing?: fs.Stats } {
  if (target === '') throw new SpartanError('the output file name is empty');
  if (/[\\/]$/.test(target)) throw new SpartanError(`${target}: ends with a slash, so it names a folder; give a file name`);
  let file = path.resolve(target);
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') throw withCode(new SpartanError(describeFsError(target, e, 'cannot be checked')), e);
  }
  if (existing) {
    if (!existing.isFile()) {
      const refusal = new SpartanError(`${target}: ${describeNonRegular(existing)}; refusing to replace it`);
      throw withCode(refusal, { code: existing.isDirectory() ? 'EISDIR' : 'EEXIST' });
    }
    file = fs.realpathSync(file);
  }
  return { file, existing };
}

function withCode(err: SpartanError, cause: unknown): SpartanError {
  const code = (cause as NodeJS.ErrnoException)?.code;
  if (code) (err as SpartanError & { code?: string }).code = code;
  return err;
}

/**
 * Writes `data` to `target` atomically: temp file in the same directory (a rename is only atomic within one file
 * system), fsync, rename over the target. Creates missing parent directories. The target keeps its permission
 * bits. On any error the temp file is removed and a one-line SpartanError naming the target is thrown (with the
 * fs error's `code`), leaving any previous file untouched.
 */
export function writeFileAtomic(target: string, data: Buffer | string, options: WriteFileAtomicOptions = {}): void {
  const { file, existing } = resolveWriteTarget(target);
  const dir = path.dirname(file);
  try {
    fs.mkdirSync(dir, { recursive: true });
  } catch (e) {
    throw withCode(new SpartanError(describeFsError(dir, e, 'cannot create the folder')), e);
  }
  removeStaleTempFiles(file);
  const tempPath = tempPathFor(file);
  let fd: number | undefined;
  try {
    fd = fs.openSync(tempPath, 'wx', existing ? existing.mode & 0o7777 : 0o666); // 'x': never follow or reuse a path
    if (existing) fs.fchmodSync(fd, existing.mode & 0o7777); // the umask must not widen or narrow a kept mode
    const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
    let done = 0;
    while (done < bytes.length) done += fs.writeSync(fd, bytes, done, bytes.length - done);
    fs.fsyncSync(fd); // the data must be on disk before the rename makes it visible
    fs.closeSync(fd);
    fd = undefined;
    options.beforeRename?.(tempPath);
    fs.renameSync(tempPath, file);
  } catch (err) {
    if (fd !== undefined) {
      try {
        fs.closeSync(fd);
      } catch {
        // already failing; the original error is the useful one
      }
    }
    try {
      fs.rmSync(tempPath, { force: true, recursive: true });
    } catch {
      // best effort
    }
    if (err instanceof SpartanError) throw err;
    throw withCode(new SpartanError(`${describeFsError(target, err, 'cannot be written')}; any earlier file there is untouched`), err);
  }
  // Persist the rename itself. Directories cannot be opened for fsync on Windows; that is only durability, not
  // atomicity, so failures here are ignored.
  try {
    const dfd = fs.openSync(dir, 'r');
    try {
      fs.fsyncSync(dfd);
    } finally {
      fs.closeSync(dfd);
    }
  } catch {
    // ignore
  }
}
