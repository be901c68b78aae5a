/**
 * `spartan bench`: device profiles, honest constraint detection (checked against what the filesystem and PATH
 * say), a constrained launch verified from inside the child, and a real small run of the built CLI (JSON schema,
 * CSV). Small shapes only: the timings themselves are not tested.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { formatCpuList, parseCpuList, parseCpuQuotaFlag, parseProfileList, resolveProfile } from '../src/lab/bench/profiles';
import {
  Observed,
  checkObserved,
  detectCapabilities,
  launchConstrained,
  liveCgroupCount,
  planConstraints,
  which,
} from '../src/lab/bench/constraints';
import { CSV_COLUMNS } from '../src/lab/bench/report';

const ROOT = path.resolve(__dirname, '..');

test('profiles resolve against the CPUs available', () => {
  const two = resolveProfile('rpi4', {}, [0, 1]);
  assert.equal(two.threads, 2);
  assert.deepEqual(two.affinity, [0, 1]);
  assert.equal(two.coresCapped, true);
  assert.equal(two.memoryMB, 8192);
  assert.equal(two.cpuQuota, 0.35);

  const eight = resolveProfile('rpi4', {}, [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.equal(eight.threads, 4);
  assert.deepEqual(eight.affinity, [0, 1, 2, 3]);
  assert.equal(eight.coresCapped, false);

  const phone = resolveProfile('iphone11', {}, [2, 3, 5]);
  assert.equal(phone.threads, 3);
  assert.deepEqual(phone.affinity, [2, 3, 5], 'the first N CPUs this process may use, not 0..N-1');
  assert.equal(phone.memoryMB, 4096);

  const host = resolveProfile('host', {}, [0, 1, 2]);
  assert.equal(host.threads, 3);
  assert.equal(host.affinity, null);
  assert.equal(host.memoryMB, null);
  assert.equal(host.cpuQuota, null);
  assert.deepEqual(resolveProfile('host', { threadsCap: 1 }, [0, 1, 2]).affinity, [0]);
});

test('custom profile and --cpu-quota overrides', () => {
  const c = resolveProfile('custom', { cores: 3, memoryMB: 1000, cpuQuota: '0.5' }, [0, 1, 2, 3]);
  assert.equal(c.threads, 3);
  assert.equal(c.memoryMB, 1000);
  assert.equal(c.cpuQuota, 0.5);
  assert.equal(c.cpuQuotaSource, 'flag');
  // A plain number overrides every throttled profile, never host.
  assert.equal(resolveProfile('rpi4', { cpuQuota: '0.5' }, [0]).cpuQuota, 0.5);
  assert.equal(resolveProfile('host', { cpuQuota: '0.5' }, [0]).cpuQuota, null);
  // NAME=F pairs only touch the profiles named.
  assert.equal(resolveProfile('rpi4', { cpuQuota: 'rpi4=0.2' }, [0]).cpuQuota, 0.2);
  assert.equal(resolveProfile('iphone11', { cpuQuota: 'rpi4=0.2' }, [0]).cpuQuota, 0.8);
  assert.equal(resolveProfile('host', { cpuQuota: 'host=0.9' }, [0]).cpuQuota, 0.9);
  assert.equal(resolveProfile('custom', {}, [0, 1]).threads, 2, 'custom without flags: every core');
  assert.throws(() => parseCpuQuotaFlag('1.5'), /fraction/);
  assert.throws(() => parseCpuQuotaFlag('pi=0.3'), /NAME=FRACTION/);
  assert.throws(() => parseProfileList('rpi4,pi5'), /unknown profile "pi5"/);
  assert.deepEqual(parseProfileList('host, rpi4,host'), ['host', 'rpi4']);
  assert.deepEqual(parseCpuList('0-2,5,7-8'), [0, 1, 2, 5, 7, 8]);
  assert.equal(formatCpuList([0, 1, 2, 5, 7, 8]), '0-2,5,7-8');
});

test('tool detection agrees with PATH, and a missing taskset is reported as not enforced', () => {
  const caps = detectCapabilities({ noCgroups: true });
  if (process.platform !== 'linux') {
    assert.equal(caps.taskset, null);
    return;
  }
  const shellSays = (name: string) => spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).status === 0;
  assert.equal(caps.taskset !== null, shellSays('taskset'));
  assert.equal(caps.prlimit !== null, shellSays('prlimit'));
  assert.equal(which('taskset'), caps.taskset);

  const bare = detectCapabilities({ noCgroups: true, pathEnv: '' });
  assert.equal(bare.taskset, null);
  assert.equal(bare.prlimit, null);
  const plan = planConstraints(resolveProfile('custom', { cores: 1, memoryMB: 512, cpuQuota: '0.5' }, [0, 1]), bare);
  assert.equal(plan.constraints.threads.enforced, true);
  assert.equal(plan.constraints.affinity.enforced, false);
  assert.match(plan.constraints.affinity.detail, /taskset/);
  assert.equal(plan.constraints.memory.enforced, false);
  assert.equal(plan.constraints.cpuQuota.enforced, false, 'a CPU quota needs a cgroup');
  assert.match(plan.constraints.cpuQuota.detail, /cgroup/);
});

test('cgroup detection agrees with the filesystem; more cores than the machine has are reported', () => {
  const caps = detectCapabilities();
  for (const [controller, ctl] of [
    ['memory', caps.cgroup.memory],
    ['cpu', caps.cgroup.cpu],
  ] as const) {
    if (!ctl) {
      assert.ok(caps.cgroup.detail.length > 0, `${controller}: not usable, and the report must say why`);
      continue;
    }
    // Usable means: a child can really be created (and removed) there, and the controller's file exists.
    const probe = path.join(ctl.parent, `spartan-probe-${process.pid}-test`);
    fs.mkdirSync(probe);
    const file =
      ctl.version === 2
        ? controller === 'memory'
          ? 'memory.max'
          : 'cpu.max'
        : controller === 'memory'
          ? 'memory.limit_in_bytes'
          : 'cpu.cfs_quota_us';
    const exists = fs.existsSync(path.join(probe, file));
    fs.rmdirSync(probe);
    assert.ok(exists, `${probe}/${file}`);
  }
  const plan = planConstraints(resolveProfile('rpi4'), caps);
  assert.equal(plan.constraints.memory.enforced, Boolean(caps.cgroup.memory || caps.prlimit));
  assert.equal(
    plan.constraints.memory.mechanism,
    caps.cgroup.memory ? `cgroup v${caps.cgroup.memory.version}` : caps.prlimit ? 'prlimit --as' : null,
  );
  assert.equal(plan.constraints.cpuQuota.enforced, Boolean(caps.cgroup.cpu));
  const cpus = resolveProfile('host').availableCpus.length;
  assert.equal(plan.constraints.threads.applied, Math.min(4, cpus));
  if (cpus < 4) assert.match(plan.constraints.threads.detail, new RegExp(`this machine offers ${cpus}: only ${cpus} are emulated`));

  const noCg = planConstraints(resolveProfile('rpi4'), detectCapabilities({ noCgroups: true }));
  assert.equal(noCg.constraints.cpuQuota.enforced, false);
  if (caps.prlimit) assert.match(noCg.constraints.memory.detail, /VIRTUAL memory, not RSS/);
});

test(
  'a constrained child sees its constraints, and its cgroups are removed afterwards',
  { skip: process.platform !== 'linux' },
  async () => {
    const caps = detectCapabilities();
    const plan = planConstraints(resolveProfile('custom', { cores: 1, memoryMB: 512, cpuQuota: '0.5' }), caps);
    const script =
      `const fs=require('fs');const r=f=>{try{return fs.readFileSync(f,'utf8')}catch{return ''}};` +
      `const s=r('/proc/self/status'),l=r('/proc/self/limits');` +
      `console.log(JSON.stringify({pid:process.pid,cpusAllowed:(/^Cpus_allowed_list:\\s*(.+)$/m.exec(s)||[])[1]||null,` +
      `cgroups:r('/proc/self/cgroup').split('\\n').filter(Boolean),addressSpaceLimit:(/^Max address space\\s+(\\S+)/m.exec(l)||[])[1]||null}))`;
    const launched = launchConstrained<Observed>(plan, { command: process.execPath, args: ['-e', script] }, []);
    const seen = (await launched.child.next())!;
    assert.equal((await launched.child.exit).code, 0);
    assert.equal(seen.pid, launched.child.pid, 'the wrapper execs: the pid we hold is the worker');
    assert.deepEqual(checkObserved(plan, launched, seen), {});
    if (plan.taskset) assert.equal(seen.cpusAllowed, plan.taskset.cpus);
    const dirs = launched.cgroupDirs.map((c) => c.dir);
    assert.equal(dirs.length, plan.cgroups.length);
    for (const d of dirs) assert.ok(fs.existsSync(d));
    launched.dispose();
    for (const d of dirs) assert.ok(!fs.existsSync(d), `${d} left behind`);
    assert.equal(liveCgroupCount(), 0);
  },
);

test('spartan bench --json and --csv on a tiny backbone', { timeout: 120_000 }, () => {
  execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'inherit' });
  const csv = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-bench-')), 'out', 'bench.csv');
  const res = spawnSync(
    process.execPath,
    [
      path.join(ROOT, 'bin', 'spartan.js'),
      'bench',
      '--backbone',
      'synthetic:tiny',
      '--seq',
      '16',
      '--batch',
      '4',
      '--train-batch',
      '4',
      '--quick',
      '--profiles',
      'host',
      '--methods',
      'spartan,head',
      '--json',
      '--csv',
      csv,
    ],
    { cwd: ROOT, encoding: 'utf8', timeout: 110_000 },
  );
  assert.equal(res.status, 0, res.stderr);
  const r = JSON.parse(res.stdout);
  assert.equal(r.backbone, 'synthetic:tiny');
  assert.equal(r.batch, 4);
  assert.equal(r.seq, 16);
  assert.equal(r.reps, 1);
  assert.equal(r.profiles.length, 1);
  const p = r.profiles[0];
  assert.equal(p.profile, 'host');
  assert.equal(typeof p.label, 'string');
  for (const k of ['threads', 'affinity', 'memory', 'cpuQuota']) {
    assert.equal(typeof p.constraints[k].enforced, 'boolean', k);
    assert.equal(typeof p.constraints[k].detail, 'string', k);
    assert.ok('requested' in p.constraints[k] && 'applied' in p.constraints[k], k);
  }
  assert.equal(p.constraints.threads.enforced, true);
  assert.deepEqual(
    p.results.map((m: any) => m.method),
    ['spartan', 'head'],
  );
  for (const m of p.results) {
    assert.deepEqual(m.errors, {}, m.method);
    assert.ok(m.inference.instancesPerMinute > 0, m.method);
    assert.equal(m.inference.seconds.length, 1);
    assert.ok(m.inference.median > 0 && m.inference.min <= m.inference.median && m.inference.median <= m.inference.max);
    assert.ok(m.inference.cpusUsed > 0 && m.inference.cpuSeconds.length === 1, m.method);
    assert.ok(m.training.examplesPerSecond > 0, m.method);
    assert.ok(m.storageBytes > 0, m.method);
    assert.ok(m.peakRssMB > 0, m.method);
    assert.ok(m.ratios.inferenceVsPlain > 0 && m.ratios.trainingVsPlain > 0, m.method);
  }
  const [spartan, head] = p.results;
  assert.ok(spartan.storageBytes > head.storageBytes, `spartan ${spartan.storageBytes} B vs head ${head.storageBytes} B`);
  assert.equal(head.ratios.inferenceVsPlain, 1);
  assert.equal(p.baseline.method, 'head');
  // Flat rows and the constraints map for the benchmark panel.
  assert.equal(r.rows.length, 2);
  assert.deepEqual(Object.keys(r.constraints), ['host']);
  // Progress: JSON lines with "event": "bench" on stderr.
  const events = res.stderr
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.ok(events.every((e) => e.event === 'bench'));
  assert.equal(events.filter((e) => e.stage === 'rep').length, 4);

  const lines = fs.readFileSync(csv, 'utf8').trim().split('\n');
  assert.equal(lines[0], CSV_COLUMNS.join(','));
  assert.equal(lines.length, 3);
  assert.ok(lines[1].startsWith('host,'));
  assert.equal(lines[1].split(',').length, CSV_COLUMNS.length);

  // No cgroup of the run's workers is left behind.
  const caps = detectCapabilities();
  for (const ctl of [caps.cgroup.memory, caps.cgroup.cpu]) {
    if (ctl)
      assert.deepEqual(
        fs.readdirSync(ctl.parent).filter((e) => e.startsWith(`spartan-bench-${res.pid}-`)),
        [],
      );
  }
});
