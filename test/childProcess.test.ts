/**
 * The self-spawn helper (src/engine/runtime/childProcess.ts) on small `node -e` children: the engine
 * environment, JSON lines parsed from both streams, the result and the failure message, and cancel reaching the
 * child's whole process group. (bin/spartan.js and exitWithParent: test/hostile-faults.test.ts, section 5;
 * bench workers: test/bench.test.ts; glue shards: test/experiments.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChildFailed, PARENT_PID_ENV, selfEntry, spawnEngine } from '../src/engine/runtime/childProcess';
import { GLIBC_TUNABLES } from '../src/engine/runtime/processEnv';
import { alive } from './hostile/harness';

// `--` ends node's own options: what follows is the child's argv, as for a CLI entry.
const node = (script: string) => ({ command: process.execPath, args: ['-e', script, '--'] });

test('a child gets the engine environment; JSON lines from stdout and stderr become events, other lines logs', async () => {
  const script = `
    process.stderr.write(JSON.stringify({ event: 'step', step: 1 }) + '\\n');
    process.stderr.write('a human line\\n');
    console.log(JSON.stringify({ env: { tunables: process.env.GLIBC_TUNABLES ?? null, parent: process.env.${PARENT_PID_ENV} ?? null }, extra: process.env.EXTRA }));
    console.log(JSON.stringify({ done: true, args: process.argv.slice(1) }));`;
  const events: [unknown, string][] = [];
  const logs: string[] = [];
  const env = { ...process.env };
  const child = spawnEngine<Record<string, any>>(node(script), ['--flag', 'value'], {
    env: { EXTRA: 'yes' },
    onEvent: (e, stream) => events.push([e, stream]),
    onLog: (l) => logs.push(l),
  });
  const first = (await child.next())!;
  // A GLIBC_TUNABLES already in the environment wins; otherwise the engine's is set.
  assert.equal(first.env.tunables, env.GLIBC_TUNABLES ?? GLIBC_TUNABLES);
  assert.equal(first.env.parent, String(process.pid));
  assert.equal(first.extra, 'yes');
  const last = await child.result('the probe');
  assert.deepEqual(last, { done: true, args: ['--flag', 'value'] });
  assert.deepEqual(
    events.map(([e, s]) => [Object.keys(e as object)[0], s]),
    [
      ['event', 'stderr'],
      ['env', 'stdout'],
      ['done', 'stdout'],
    ],
  );
  assert.deepEqual(logs, ['a human line']);
  assert.equal((await child.exit).code, 0);
});

test('a failing child: ChildFailed names it, its exit, its {"error"} line and the end of its stderr', async () => {
  const script = `console.log(JSON.stringify({ error: 'bad input at line 3' })); console.error('one'); console.error('two'); process.exit(3);`;
  const child = spawnEngine(node(script), []);
  await assert.rejects(child.result('the probe'), (e: unknown) => {
    assert.ok(e instanceof ChildFailed);
    assert.equal(e.exit.code, 3);
    assert.match(e.message, /^the probe exited with code 3; bad input at line 3; stderr: one \| two$/);
    return true;
  });
  const missing = spawnEngine({ command: '/nonexistent/node', args: [] }, []);
  await assert.rejects(missing.result('the worker'), /the worker could not be started: .*ENOENT/);
});

test('stdout promised JSON lines: a line that is not JSON is an error, not skipped', async () => {
  const child = spawnEngine(node(`console.log('hello')`), []);
  await assert.rejects(child.next(), /not JSON: hello/);
  await child.exit;
});

test('cancel stops the child and what it started (its process group), SIGKILL after the grace period', async () => {
  // The child starts a grandchild that ignores SIGTERM, tells us its pid, and ignores SIGTERM itself.
  const script = `
    const { spawn } = require('node:child_process');
    process.on('SIGTERM', () => {});
    const g = spawn(process.execPath, ['-e', "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { stdio: 'ignore' });
    console.log(JSON.stringify({ grandchild: g.pid }));
    setInterval(() => {}, 1000);`;
  const child = spawnEngine<{ grandchild: number }>(node(script), [], { killGraceMs: 300 });
  const { grandchild } = (await child.next())!;
  assert.ok(alive(grandchild));
  const t0 = Date.now();
  child.cancel(); // SIGTERM (ignored by both), then SIGKILL to the group
  const exit = await child.exit;
  assert.equal(exit.signal, 'SIGKILL');
  assert.ok(Date.now() - t0 >= 250, 'the grace period was given');
  for (let i = 0; i < 50 && alive(grandchild); i++) await new Promise((r) => setTimeout(r, 20));
  assert.ok(!alive(grandchild), 'the grandchild was in the group and is gone');
});

test('an aborted signal cancels the child; selfEntry restarts this program without --inspect flags', async () => {
  const abort = new AbortController();
  const child = spawnEngine(node(`setInterval(() => {}, 1000)`), [], { signal: abort.signal });
  abort.abort();
  assert.equal((await child.exit).signal, 'SIGTERM');

  const entry = selfEntry();
  assert.equal(entry.command, process.execPath);
  assert.equal(entry.args[entry.args.length - 1], process.argv[1]);
  assert.ok(!entry.args.some((a) => a.startsWith('--inspect')));
});
