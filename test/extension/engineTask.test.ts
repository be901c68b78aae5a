/**
 * The task pipeline every engine command runs through (src/extension/engineTask.ts), on a recording host instead
 * of VS Code: the trust check, refusals, declined prompts, engine failures (with the log button), and a Cancel
 * that kills a real engine child (the fake CLI) and ends with the task's notice.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runEngineTask, type TaskHost } from '../../src/extension/engineTask';
import { EngineError, engineArgs, runEngine } from '../../src/extension/engineProcess';

const CLI = path.join(__dirname, 'fixtures', 'fake-cli.js');

/** A host that records what the user would see; `cancelAfterMs` presses the progress notification's Cancel. */
function recordingHost(o: { trusted?: boolean; backbone?: string; pick?: string; cancelAfterMs?: number } = {}) {
  const seen = {
    untrusted: [] as string[],
    errors: [] as string[][],
    infos: [] as string[],
    logs: [] as string[],
    shownLog: 0,
    progress: [] as string[],
  };
  const host: TaskHost = {
    isTrusted: () => o.trusted ?? true,
    warnUntrusted: (what) => seen.untrusted.push(what),
    showError: (message, ...actions) => {
      seen.errors.push([message, ...actions]);
      return Promise.resolve(o.pick);
    },
    showInfo: (message) => seen.infos.push(message),
    showLog: () => seen.shownLog++,
    log: {
      info: (l) => seen.logs.push(`info ${l}`),
      error: (l) => seen.logs.push(`error ${l}`),
      debug: (l) => seen.logs.push(`debug ${l}`),
    },
    withProgress: (p, work) => {
      seen.progress.push(`${p.title}${p.cancellable ? ' (cancellable)' : ''}`);
      const abort = new AbortController();
      if (o.cancelAfterMs !== undefined) setTimeout(() => abort.abort(), o.cancelAfterMs);
      return work(() => undefined, abort.signal);
    },
    resolveBackbone: () => Promise.resolve(o.backbone),
    readForEngine: (f) => Promise.resolve(`text of ${f.fsPath}`),
  };
  return { host, seen };
}

const settle = () => new Promise((r) => setImmediate(r));

test('an untrusted workspace: the warning names the task and the body never runs', async () => {
  const { host, seen } = recordingHost({ trusted: false });
  let ran = false;
  const r = await runEngineTask(host, { trust: 'evaluate', what: 'evaluation' }, async () => {
    ran = true;
    return 1;
  });
  assert.equal(r, undefined);
  assert.equal(ran, false);
  assert.deepEqual(seen.untrusted, ['evaluate']);
  // A task without `trust` runs in an untrusted workspace.
  assert.equal(await runEngineTask(host, { what: 'x' }, async () => 2), 2);
});

test('the body’s value comes back; the file is read as the engine reads it, the backbone resolved', async () => {
  const { host, seen } = recordingHost({ backbone: '/b' });
  const r = await runEngineTask(host, { trust: 'evaluate', what: 'evaluation' }, async (task) => {
    const f = task.onDisk({ scheme: 'file', fsPath: '/w/d.jsonl' }, 'evaluates');
    return [await task.read(f), await task.backbone(), await task.run('Evaluating', async () => 'ran')];
  });
  assert.deepEqual(r, ['text of /w/d.jsonl', '/b', 'ran']);
  assert.deepEqual(seen.progress, ['Evaluating (cancellable)']);
  assert.deepEqual(seen.errors, []);
});

test('refusals are shown as they are, without the log button; declined prompts stop silently', async () => {
  const { host, seen } = recordingHost();
  const untitled = await runEngineTask(host, { what: 'evaluation' }, async (task) =>
    task.onDisk({ scheme: 'untitled', fsPath: 'Untitled-1' }, 'evaluates'),
  );
  assert.equal(untitled, undefined);
  assert.deepEqual(seen.errors, [['Spartan evaluates files on disk: save the JSONL file first.']]);
  // A memory file the guarded read refuses: the reader's message, prefixed.
  await runEngineTask(host, { what: 'export' }, async (task) =>
    task.guard(() => {
      throw new Error('m.safetensors: not a safetensors file');
    }),
  );
  assert.deepEqual(seen.errors[1], ['Spartan: m.safetensors: not a safetensors file']);
  // No file picked, no backbone (the resolver told the user): nothing more is shown, and the engine is not run.
  let engineRan = false;
  assert.equal(await runEngineTask(host, { what: 'x' }, async (task) => task.onDisk(undefined, 'reads')), undefined);
  assert.equal(
    await runEngineTask(host, { what: 'x' }, async (task) => {
      await task.backbone();
      engineRan = true;
    }),
    undefined,
  );
  assert.equal(engineRan, false);
  assert.equal(seen.errors.length, 2);
  assert.deepEqual(seen.infos, []);
});

test('an engine failure: logged with its stderr, shown with Show Log, which opens the log', async () => {
  const { host, seen } = recordingHost({ pick: 'Show Log' });
  const r = await runEngineTask(host, { what: 'evaluation' }, async (task) => {
    task.what = "evaluation of 'm'";
    throw new EngineError('d.jsonl:3: label missing', 1, 'trace line\n');
  });
  assert.equal(r, undefined);
  await settle();
  assert.deepEqual(seen.errors, [["Spartan: evaluation of 'm' failed: d.jsonl:3: label missing", 'Show Log']]);
  assert.ok(seen.logs.includes("error evaluation of 'm' failed: d.jsonl:3: label missing"));
  assert.ok(seen.logs.includes('debug trace line\n'));
  assert.equal(seen.shownLog, 1);
  // Any other error (a bug, a file that vanished) is reported the same way.
  const other = recordingHost();
  await runEngineTask(other.host, { what: 'ranking rows' }, async () => {
    throw new Error('ENOENT: d.jsonl');
  });
  assert.deepEqual(other.seen.errors, [['Spartan: ranking rows failed: ENOENT: d.jsonl', 'Show Log']]);
  assert.equal(other.seen.shownLog, 0);
});

test('Cancel kills the engine child and ends the task with its notice, not an error', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-task-'));
  const data = path.join(dir, 'd.jsonl');
  fs.writeFileSync(data, '{"text":"a","label":"x"}\n{"text":"b","label":"y"}\n');
  const out = path.join(dir, 'm.safetensors');
  const { host, seen } = recordingHost({ cancelAfterMs: 300 });
  let notice = 0;
  const t0 = Date.now();
  const r = await runEngineTask(
    host,
    {
      what: 'fine-tuning',
      cancelled: () => {
        notice++;
        return `Fine-tuning cancelled.${fs.existsSync(out) ? ' The previous memory is unchanged.' : ''}`;
      },
    },
    (task) =>
      task.run('Fine-tuning', (signal) =>
        runEngine({
          cliPath: CLI,
          args: engineArgs('train', { backbone: 'B', data, out }),
          env: { FAKE_STEPS: '1000', FAKE_STEP_MS: '20' },
          signal,
          killGraceMs: 500,
        }),
      ),
  );
  assert.equal(r, undefined);
  assert.ok(Date.now() - t0 < 10_000, 'the run stopped at the cancel, not after its 1000 steps');
  assert.equal(fs.existsSync(out), false, 'a cancelled training writes no memory');
  assert.equal(notice, 1);
  assert.deepEqual(seen.infos, ['Fine-tuning cancelled.']);
  assert.deepEqual(seen.errors, []);
  assert.ok(seen.logs.includes('info fine-tuning cancelled'));
  fs.rmSync(dir, { recursive: true, force: true });
});
