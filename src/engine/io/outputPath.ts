/**
 * Output paths are checked before the work that produces them: a training run of an hour must not end in "is a
 * directory" with its result lost. The check does what the final atomic write will do, minus the data: resolve the
 * target (regular files or nothing), make sure the folder exists or can be created, and create and remove a temp
 * file of the very name length the write will use (which catches read-only folders, permissions, names that fit
 * only without the temp suffix, a read-only file system). Free space is checked when the caller can estimate the
 * size. What can still fail later (a disk filling up meanwhile) fails as a one-line message, the earlier file kept.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SpartanError } from '../types';
import { mib } from '../limits';
import { resolveWriteTarget, tempPathFor } from './atomicWrite';
import { describeFsError } from './regularFile';

/** The nearest folder on the way up from `dir` that exists (where missing folders would be created). */
function nearestExisting(dir: string): string {
  let d = dir;
  while (!fs.existsSync(d)) {
    const up = path.dirname(d);
    if (up === d) break;
    d = up;
  }
  return d;
}

/**
 * Throws a one-line SpartanError naming `what` (the flag, e.g. `--out`) and the path when `target` cannot be
 * written atomically. `estimatedBytes`, when given, is compared with the free space of the file system.
 */
export function checkOutputPath(target: string | undefined, what: string, estimatedBytes?: number): void {
  if (target === undefined || target.trim() === '') throw new SpartanError(`${what}: the file name is empty`);
  let file: string;
  try {
    file = resolveWriteTarget(target).file;
  } catch (e) {
    throw new SpartanError(`${what} ${(e as Error).message}`);
  }
  const dir = path.dirname(file);
  const base = nearestExisting(dir);
  const st = fs.statSync(base);
  if (!st.isDirectory()) throw new SpartanError(`${what} ${target}: ${base} is a file, so no folder can be created there`);
  if (base !== dir) {
    // The folders will be created by the write; check that they can be.
    try {
      fs.accessSync(base, fs.constants.W_OK | fs.constants.X_OK);
    } catch (e) {
      throw new SpartanError(`${what} ${describeFsError(base, e, 'cannot create folders in it')}`);
    }
    return;
  }
  // A probe with the write's own temp-name length (pid and random part are fixed-width per process).
  const probe = tempPathFor(file);
  try {
    const fd = fs.openSync(probe, 'wx');
    fs.closeSync(fd);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === 'ENAMETOOLONG'
        ? `${target}: the file name is too long (the temporary file next to it needs ${path.basename(probe).length - path.basename(file).length} more characters)`
        : describeFsError(dir, e, 'cannot be written');
    throw new SpartanError(`${what} ${why}`);
  } finally {
    try {
      fs.rmSync(probe, { force: true });
    } catch {
      // never created (the open above failed)
    }
  }
  if (estimatedBytes !== undefined && typeof fs.statfsSync === 'function') {
    try {
      const s = fs.statfsSync(dir);
      const free = s.bavail * s.bsize;
      if (free < estimatedBytes)
        throw new SpartanError(`${what} ${target}: ${mib(free)} free on its file system, but the file needs about ${mib(estimatedBytes)}`);
    } catch (e) {
      if (e instanceof SpartanError) throw e;
      // statfs unsupported here: the write itself will report a full disk
    }
  }
}

/** Whether two paths name the same file (same device and inode when both exist, else the same resolved path). */
function sameFile(a: string, b: string): boolean {
  const sa = fs.statSync(a, { throwIfNoEntry: false });
  const sb = fs.statSync(b, { throwIfNoEntry: false });
  if (sa && sb) return sa.dev === sb.dev && sa.ino === sb.ino;
  return path.resolve(a) === path.resolve(b);
}

/**
 * Refuses an output that is one of the command's inputs: `train --out data.jsonl` would replace the training data
 * with a memory, `export --onnx m.safetensors` the memory with a model. `inputs` are [flag, path] pairs.
 */
export function checkNotAnInput(target: string, what: string, inputs: [string, string | undefined][]): void {
  for (const [flag, input] of inputs) {
    if (input !== undefined && input !== '' && sameFile(target, input)) {
      throw new SpartanError(`${what} ${target} is the same file as ${flag}; it would be replaced by the result`);
    }
  }
}
