/**
 * Applies a device profile's constraints to a benchmark worker process, as far as this OS allows, and says
 * honestly which ones hold. Every measurement of `spartan bench` runs in a child process so that its limits (and
 * its peak RSS) are its own:
 *  - intra-op threads: always (ONNX Runtime's intraOpNumThreads, inter-op 1);
 *  - CPU affinity: `taskset` (util-linux), if installed;
 *  - memory: a cgroup (v2 memory.max, or v1 memory.limit_in_bytes) when this process may create a child of its own
 *    cgroup with the memory controller, else `prlimit --as` (an address-space limit: it caps *virtual* memory, not
 *    RSS, so it is stricter than the device's RAM for a process that reserves a lot, e.g. V8 and ONNX Runtime's
 *    arena — a worker that cannot start under it is reported as failed, not silently retried);
 *  - CPU quota (emulating slower cores): only a cgroup's cpu.max (v1 cpu.cfs_quota_us); otherwise not enforced.
 * Nothing needs root: a cgroup is used only if it is writable, and only *below this process's own cgroup* (so the
 * worker stays inside whatever limits this process already has). Controllers are never enabled and nothing of the
 * system's cgroup setup is changed; every child cgroup made here is removed when its worker exits (and on exit of
 * this process; stale ones of dead bench processes are swept at the next detection).
 * The workers report what they observe from the inside (their affinity, cgroup membership, address-space limit)
 * and report.ts marks a constraint enforced only when that matches the plan.
 * No vscode import: the CLI and the extension's engine process share this.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ResolvedProfile, formatCpuList, parseCpuList } from './profiles';
import { EngineChild, Entry, spawnEngine } from '../../engine';

// ------------------------------------------------------------------ what this machine allows

export interface CgroupController {
  version: 1 | 2;
  /** The directory under which children are created: this process's own cgroup in that hierarchy. */
  parent: string;
}

export interface Capabilities {
  platform: NodeJS.Platform;
  /** Absolute paths of the util-linux tools, or null when not installed. */
  taskset: string | null;
  prlimit: string | null;
  /** Absolute path of a POSIX shell: the wrapper that applies the limits to itself and then execs the worker. */
  shell: string | null;
  cgroup: {
    memory: CgroupController | null;
    cpu: CgroupController | null;
    /** What was found, and why a controller cannot be used. */
    detail: string[];
  };
}

export interface DetectOptions {
  /** Do not use cgroups even when available (falls back to prlimit for memory; no CPU quota). */
  noCgroups?: boolean;
  /** PATH to look the tools up in (tests). */
  pathEnv?: string;
}

/** An executable named `name` on PATH, or null. */
export function which(name: string, pathEnv = process.env.PATH ?? ''): string | null {
  for (const dir of pathEnv.split(path.delimiter).filter(Boolean)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

interface MountInfo {
  mountPoint: string;
  root: string;
  fsType: string;
  superOptions: string[];
}

function readMounts(): MountInfo[] {
  const out: MountInfo[] = [];
  for (const line of fs.readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    // id parent major:minor root mountpoint options [optional fields] - fstype source superoptions
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const left = line.slice(0, dash).split(' ');
    const right = line.slice(dash + 3).split(' ');
    const unescape = (s: string) => s.replace(/\\(\d{3})/g, (_, o) => String.fromCharCode(parseInt(o, 8)));
    out.push({ root: unescape(left[3]), mountPoint: unescape(left[4]), fsType: right[0], superOptions: (right[2] ?? '').split(',') });
  }
  return out;
}

/** /proc/self/cgroup as [controllers, path] pairs ("" controllers: the v2 hierarchy). */
function readOwnCgroups(): { controllers: string[]; path: string }[] {
  return fs
    .readFileSync('/proc/self/cgroup', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => {
      const [, ctl, ...rest] = line.split(':');
      return { controllers: ctl ? ctl.split(',') : [], path: rest.join(':') };
    });
}

/** The directory of `cgroupPath` under a mount whose root is `mountRoot` (they differ inside some containers). */
function cgroupDir(mount: MountInfo, cgroupPath: string): string | null {
  const root = mount.root === '/' ? '' : mount.root;
  if (root && !(cgroupPath === root || cgroupPath.startsWith(root + '/'))) return null;
  return path.join(mount.mountPoint, cgroupPath.slice(root.length)).replace(/(.)\/+$/, '$1');
}

/** Can this process create (and remove) a child cgroup in `dir`? Returns null if so, else why not. */
function probeWritable(dir: string): string | null {
  const probe = path.join(dir, `spartan-probe-${process.pid}`);
  try {
    fs.mkdirSync(probe);
  } catch (e) {
    return `cannot create a child cgroup in ${dir} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
  }
  try {
    fs.rmdirSync(probe);
  } catch {
    // best effort; swept later as stale (its pid is ours, dead by then)
  }
  return null;
}

/**
 * Removes empty `spartan-bench-PID-N` / `spartan-probe-PID` children (older than 10 minutes) left by bench processes
 * that no longer run (killed with SIGKILL, so their exit handler could not clean up). rmdir fails on a non-empty
 * cgroup, so a cgroup in use is never removed.
 */
function sweepStale(dir: string): void {
  let entries: string[];
  try {
    entries = fs.readdirSync(dir);
  } catch {
    return;
  }
  for (const e of entries) {
    const m = /^spartan-(?:bench|probe)-(\d+)/.exec(e);
    if (!m || Number(m[1]) === process.pid) continue;
    // Young ones may belong to a bench in another pid namespace that is just starting a worker: leave them.
    try {
      if (Date.now() - fs.statSync(path.join(dir, e)).mtimeMs < 10 * 60_000) continue;
    } catch {
      continue;
    }
    let alive = true;
    try {
      process.kill(Number(m[1]), 0);
    } catch (err) {
      alive = (err as NodeJS.ErrnoException).code === 'EPERM';
    }
    if (!alive) {
      try {
        fs.rmdirSync(path.join(dir, e));
      } catch {
        // not empty or not ours to remove: leave it
      }
    }
  }
}

function detectCgroups(): Capabilities['cgroup'] {
  const detail: string[] = [];
  let memory: CgroupController | null = null;
  let cpu: CgroupController | null = null;
  let mounts: MountInfo[], own: { controllers: string[]; path: string }[];
  try {
    mounts = readMounts();
    own = readOwnCgroups();
  } catch (e) {
    return { memory, cpu, detail: [`cannot read /proc/self/mountinfo or /proc/self/cgroup: ${(e as Error).message}`] };
  }

  // cgroup v2 (the unified hierarchy): usable if memory/cpu are enabled for children of our own cgroup.
  const v2mount = mounts.find((m) => m.fsType === 'cgroup2');
  const v2own = own.find((c) => c.controllers.length === 0);
  if (v2mount && v2own) {
    const dir = cgroupDir(v2mount, v2own.path);
    if (dir) {
      let subtree: string[] = [];
      try {
        subtree = fs.readFileSync(path.join(dir, 'cgroup.subtree_control'), 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch (e) {
        detail.push(`cgroup v2 at ${dir}: cannot read cgroup.subtree_control (${(e as NodeJS.ErrnoException).code})`);
      }
      const want = ['memory', 'cpu'].filter((c) => subtree.includes(c));
      if (want.length) {
        const problem = probeWritable(dir);
        if (problem) detail.push(`cgroup v2: ${problem}`);
        else {
          sweepStale(dir);
          if (want.includes('memory')) memory = { version: 2, parent: dir };
          if (want.includes('cpu')) cpu = { version: 2, parent: dir };
          detail.push(`cgroup v2 at ${dir}: children get ${want.join(', ')}`);
        }
      }
      const missing = ['memory', 'cpu'].filter((c) => !subtree.includes(c));
      if (missing.length) {
        detail.push(
          `cgroup v2 at ${dir}: ${missing.join(', ')} not enabled for child cgroups (cgroup.subtree_control: "${subtree.join(' ')}"); ` +
            'bench never enables controllers itself',
        );
      }
    }
  } else {
    detail.push('no cgroup v2 hierarchy for this process');
  }

  // cgroup v1 (legacy or hybrid setups): one hierarchy per controller; our own cgroup in each must be writable.
  const v1 = (controller: 'memory' | 'cpu', file: string): CgroupController | null => {
    const mount = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes(controller));
    const mine = own.find((c) => c.controllers.includes(controller));
    if (!mount || !mine) return null;
    const dir = cgroupDir(mount, mine.path);
    if (!dir) {
      detail.push(`cgroup v1 ${controller}: own cgroup ${mine.path} is outside the mount ${mount.mountPoint}`);
      return null;
    }
    if (!fs.existsSync(path.join(dir, file))) {
      detail.push(`cgroup v1 ${controller} at ${dir}: no ${file}`);
      return null;
    }
    const problem = probeWritable(dir);
    if (problem) {
      detail.push(`cgroup v1 ${controller}: ${problem}`);
      return null;
    }
    sweepStale(dir);
    detail.push(`cgroup v1 ${controller} at ${dir}: writable`);
    return { version: 1, parent: dir };
  };
  if (!memory) memory = v1('memory', 'memory.limit_in_bytes');
  if (!cpu) cpu = v1('cpu', 'cpu.cfs_quota_us');
  return { memory, cpu, detail };
}

/** What this machine allows, found at run time (never requires root; changes nothing). */
export function detectCapabilities(opts: DetectOptions = {}): Capabilities {
  const platform = process.platform;
  const caps: Capabilities = {
    platform,
    taskset: null,
    prlimit: null,
    shell: null,
    cgroup: { memory: null, cpu: null, detail: [] },
  };
  if (platform !== 'linux') {
    caps.cgroup.detail.push(`${platform}: cgroups, taskset and prlimit are Linux-only`);
    return caps;
  }
  caps.shell = fs.existsSync('/bin/sh') ? '/bin/sh' : which('sh', opts.pathEnv);
  caps.taskset = which('taskset', opts.pathEnv);
  caps.prlimit = which('prlimit', opts.pathEnv);
  if (opts.noCgroups) caps.cgroup.detail.push('cgroups not used (--no-cgroups)');
  else caps.cgroup = detectCgroups();
  if (!caps.shell) caps.cgroup.detail.push('no /bin/sh: cannot wrap the worker, so no affinity, cgroup or prlimit');
  return caps;
}

// ------------------------------------------------------------------ the plan for one profile

export interface Constraint {
  /** What the profile asks for (threads/cores, a CPU list, MB, a per-core fraction); null: nothing asked. */
  requested: number | string | null;
  /** What is applied on this machine (may be less than requested, e.g. fewer cores). */
  applied: number | string | null;
  /** True when the applied value is really in force for the worker (checked from inside it where possible). */
  enforced: boolean;
  /** How: 'onnxruntime', 'taskset', 'cgroup v2', 'cgroup v1', 'prlimit --as'; null when nothing is applied. */
  mechanism: string | null;
  detail: string;
}

export interface ProfileConstraints {
  threads: Constraint;
  affinity: Constraint;
  memory: Constraint;
  cpuQuota: Constraint;
}

export const CPU_PERIOD_US = 100_000;

export interface ConstraintPlan {
  profile: ResolvedProfile;
  constraints: ProfileConstraints;
  /** CPUs to pin to (taskset), bytes of address space (prlimit), cgroup settings per controller. */
  taskset: { tool: string; cpus: string } | null;
  prlimit: { tool: string; bytes: number } | null;
  cgroups: { controller: 'memory' | 'cpu'; ctl: CgroupController; settings: [string, string][] }[];
  shell: string | null;
}

function constraint(
  requested: Constraint['requested'],
  applied: Constraint['applied'],
  enforced: boolean,
  mechanism: string | null,
  detail: string,
): Constraint {
  return { requested, applied, enforced, mechanism, detail };
}

/** Decides how each of the profile's constraints will be applied here (nothing is applied yet). */
export function planConstraints(profile: ResolvedProfile, caps: Capabilities): ConstraintPlan {
  const avail = profile.availableCpus.length;
  const wantedCores = profile.cores ?? avail;
  const capNote = profile.coresCapped
    ? `the profile has ${profile.cores} cores, this machine offers ${avail}: only ${profile.threads} are emulated`
    : '';
  const threads = constraint(
    wantedCores,
    profile.threads,
    true,
    'onnxruntime',
    [
      `intraOpNumThreads=${profile.threads}, interOpNumThreads=1`,
      capNote,
      !profile.coresCapped && profile.threads < wantedCores ? `capped at ${profile.threads} by --threads` : '',
    ]
      .filter(Boolean)
      .join('; '),
  );

  let taskset: ConstraintPlan['taskset'] = null;
  let affinity: Constraint;
  if (!profile.affinity)
    affinity = constraint(
      null,
      null,
      false,
      null,
      `not requested (${profile.name}: every CPU this process may use, ${formatCpuList(profile.availableCpus)})`,
    );
  else {
    const cpus = formatCpuList(profile.affinity);
    const requested = profile.cores ?? profile.affinity.length;
    if (caps.taskset && caps.shell) {
      taskset = { tool: caps.taskset, cpus };
      affinity = constraint(
        requested,
        cpus,
        true,
        'taskset',
        `pinned to CPUs ${cpus} with ${caps.taskset}${capNote ? '; ' + capNote : ''}`,
      );
    } else {
      affinity = constraint(
        requested,
        null,
        false,
        null,
        caps.platform !== 'linux' ? `${caps.platform}: no taskset` : 'taskset (util-linux) is not installed',
      );
    }
  }

  const cgroups: ConstraintPlan['cgroups'] = [];
  let prlimit: ConstraintPlan['prlimit'] = null;
  let memory: Constraint;
  const cgroupWhyNot = caps.cgroup.detail.join('; ') || 'no usable cgroup';
  if (profile.memoryMB === null) memory = constraint(null, null, false, null, 'not requested (no memory limit)');
  else {
    const bytes = Math.round(profile.memoryMB * 1024 * 1024);
    const mem = caps.cgroup.memory;
    if (mem && caps.shell) {
      const settings: [string, string][] =
        mem.version === 2
          ? [
              ['memory.max', String(bytes)],
              ['memory.swap.max', '0'],
            ]
          : [
              ['memory.limit_in_bytes', String(bytes)],
              ['memory.memsw.limit_in_bytes', String(bytes)],
            ];
      cgroups.push({ controller: 'memory', ctl: mem, settings });
      memory = constraint(
        profile.memoryMB,
        profile.memoryMB,
        true,
        `cgroup v${mem.version}`,
        `${settings[0][0]}=${bytes} in a child of ${mem.parent} (RSS + page cache; swap excluded where the kernel allows)`,
      );
    } else if (caps.prlimit && caps.shell) {
      prlimit = { tool: caps.prlimit, bytes };
      memory = constraint(
        profile.memoryMB,
        profile.memoryMB,
        true,
        'prlimit --as',
        `address-space limit of ${bytes} bytes (no usable cgroup: ${cgroupWhyNot}). It limits VIRTUAL memory, not RSS: ` +
          'V8 and ONNX Runtime reserve far more address space than they touch, so this is stricter than the device RAM; a worker that fails under it is reported as failed',
      );
    } else {
      memory = constraint(profile.memoryMB, null, false, null, `no usable cgroup (${cgroupWhyNot}) and no prlimit`);
    }
  }

  let cpuQuota: Constraint;
  if (profile.cpuQuota === null) cpuQuota = constraint(null, null, false, null, 'not requested (full-speed cores)');
  else {
    // The quota covers the cores actually emulated (threads), each at cpuQuota of a host core: with a 4-core
    // profile on a 2-core machine this emulates a 2-core device, consistent with the threads and affinity.
    const quotaUs = Math.max(1000, Math.round(profile.cpuQuota * profile.threads * CPU_PERIOD_US));
    const cpu = caps.cgroup.cpu;
    const applied = `${quotaUs}/${CPU_PERIOD_US} µs`;
    const src = profile.cpuQuotaSource === 'flag' ? ' (from --cpu-quota)' : '';
    if (cpu && caps.shell) {
      const settings: [string, string][] =
        cpu.version === 2
          ? [['cpu.max', `${quotaUs} ${CPU_PERIOD_US}`]]
          : [
              ['cpu.cfs_period_us', String(CPU_PERIOD_US)],
              ['cpu.cfs_quota_us', String(quotaUs)],
            ];
      cgroups.push({ controller: 'cpu', ctl: cpu, settings });
      cpuQuota = constraint(
        profile.cpuQuota,
        applied,
        true,
        `cgroup v${cpu.version}`,
        `${profile.cpuQuota}${src} × ${profile.threads} core(s) = ${(quotaUs / CPU_PERIOD_US).toFixed(2)} CPU of time per period in a child of ${cpu.parent}. ` +
          'A time quota slows the cores down on average (bursts then throttling); it does not emulate cache sizes or vector width',
      );
    } else {
      cpuQuota = constraint(
        profile.cpuQuota,
        null,
        false,
        null,
        `needs a cgroup with the cpu controller: ${cgroupWhyNot}. Figures are at full host-core speed`,
      );
    }
  }

  return { profile, constraints: { threads, affinity, memory, cpuQuota }, taskset, prlimit, cgroups, shell: caps.shell };
}

// ------------------------------------------------------------------ launching a constrained worker

/** What a worker sees from the inside (printed in its first line; compared with the plan by checkObserved). */
export interface Observed {
  pid: number;
  cpusAllowed: string | null;
  cgroups: string[];
  addressSpaceLimit: string | null;
}

/** Reads the worker's own constraints (Linux; nulls elsewhere). Called inside the worker. */
export function observeSelf(): Observed {
  const read = (f: string) => {
    try {
      return fs.readFileSync(f, 'utf8');
    } catch {
      return null;
    }
  };
  const status = read('/proc/self/status');
  const limits = read('/proc/self/limits');
  const as = limits ? /^Max address space\s+(\S+)/m.exec(limits) : null;
  return {
    pid: process.pid,
    cpusAllowed: status ? (/^Cpus_allowed_list:\s*(.+)$/m.exec(status)?.[1].trim() ?? null) : null,
    cgroups: (read('/proc/self/cgroup') ?? '').split('\n').filter(Boolean),
    addressSpaceLimit: as ? as[1] : null,
  };
}

/** Compares what a worker observed with the plan; returns per-constraint problems (empty when all hold). */
export function checkObserved(
  plan: ConstraintPlan,
  launched: Pick<Launched, 'cgroupDirs'>,
  seen: Observed,
): Partial<Record<keyof ProfileConstraints, string>> {
  const problems: Partial<Record<keyof ProfileConstraints, string>> = {};
  if (plan.taskset) {
    const want = parseCpuList(plan.taskset.cpus).join(',');
    const got = seen.cpusAllowed ? parseCpuList(seen.cpusAllowed).join(',') : null;
    if (got !== want) problems.affinity = `the worker runs on CPUs ${seen.cpusAllowed ?? 'unknown'}, not ${plan.taskset.cpus}`;
  }
  if (plan.prlimit && seen.addressSpaceLimit !== String(plan.prlimit.bytes)) {
    problems.memory = `the worker's address-space limit is ${seen.addressSpaceLimit ?? 'unknown'}, not ${plan.prlimit.bytes}`;
  }
  for (const cg of launched.cgroupDirs) {
    const rel = '/' + path.relative(cg.ctl.parent, cg.dir);
    const inIt = seen.cgroups.some((line) => line.endsWith(rel));
    if (!inIt)
      problems[cg.controller === 'memory' ? 'memory' : 'cpuQuota'] =
        `the worker is not in ${cg.dir} (its /proc/self/cgroup: ${seen.cgroups.join(' | ')})`;
  }
  return problems;
}

export interface Launched<T = Record<string, unknown>> {
  /** The worker (spawnEngine: JSON lines on stdout, stdin piped, its own process group). */
  child: EngineChild<T>;
  cgroupDirs: { controller: 'memory' | 'cpu'; ctl: CgroupController; dir: string }[];
  /** Removes the worker's cgroups (call after it exited); returns the OOM kills its memory cgroup counted. */
  dispose(): { oomKills: number | null };
}

const liveCgroups = new Set<string>();
const liveChildren = new Set<Pick<EngineChild, 'cancel'>>();
let exitHookInstalled = false;
let counter = 0;

function removeCgroupSync(dir: string): void {
  for (let attempt = 0; attempt < 50; attempt++) {
    try {
      fs.rmdirSync(dir);
      liveCgroups.delete(dir);
      return;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        liveCgroups.delete(dir);
        return;
      }
      if (code !== 'EBUSY') return;
      // The worker has exited but the kernel may not have finished detaching it: wait a little.
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
    }
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // Synchronous: 'exit' handlers cannot await. Workers are killed by their parent's exit (stdin closes), and a
  // cgroup can only be removed once empty, hence the retries in removeCgroupSync.
  process.on('exit', () => stopAllWorkers());
}

/**
 * Kills every worker still running and removes every cgroup this process created (on SIGINT/SIGTERM and exit).
 * Synchronous, so it also works in an 'exit' handler.
 */
export function stopAllWorkers(): void {
  for (const child of liveChildren) child.cancel('SIGKILL');
  for (const dir of [...liveCgroups]) removeCgroupSync(dir);
}

/** The number of child cgroups this process currently holds (tests: must be 0 after a run). */
export function liveCgroupCount(): number {
  return liveCgroups.size;
}

/*
 * The wrapper: a shell that moves ITSELF into the cgroups, pins ITSELF with taskset -p and limits ITSELF with
 * prlimit --pid, then execs the worker. The worker therefore starts already constrained (nothing it allocates is
 * charged elsewhere) and keeps the shell's pid, so the pid we hold is the worker's. (prlimit and taskset given a
 * command would fork or not depending on the version; the --pid forms on $$ do not depend on that.)
 */
const WRAPPER = [
  "IFS='\n'",
  'for f in $SPARTAN_BENCH_CGROUP_PROCS; do echo $$ > "$f" || exit 97; done',
  'if [ -n "$SPARTAN_BENCH_CPUS" ]; then "$SPARTAN_BENCH_TASKSET" -p -c "$SPARTAN_BENCH_CPUS" $$ > /dev/null || exit 98; fi',
  'if [ -n "$SPARTAN_BENCH_AS" ]; then "$SPARTAN_BENCH_PRLIMIT" --pid $$ --as="$SPARTAN_BENCH_AS" || exit 96; fi',
  'unset SPARTAN_BENCH_CGROUP_PROCS SPARTAN_BENCH_CPUS SPARTAN_BENCH_TASKSET SPARTAN_BENCH_AS SPARTAN_BENCH_PRLIMIT',
  'exec "$@"',
].join('\n');

/** Exit codes of the wrapper, for error messages. */
export const WRAPPER_EXIT: Record<number, string> = {
  97: 'could not move the worker into its cgroup',
  98: 'taskset could not pin the worker',
  96: 'prlimit could not set the address-space limit',
};

/**
 * Starts `entry args` under the plan's constraints, as an engine child (spawnEngine) with stdin piped and JSON
 * lines on stdout; the wrapper, when a constraint needs one, is its `via`.
 */
export function launchConstrained<T = Record<string, unknown>>(plan: ConstraintPlan, entry: Entry, args: string[]): Launched<T> {
  const cgroupDirs: Launched['cgroupDirs'] = [];
  const cleanup = () => {
    for (const c of cgroupDirs) removeCgroupSync(c.dir);
  };
  try {
    for (const cg of plan.cgroups) {
      installExitHook();
      const dir = path.join(cg.ctl.parent, `spartan-bench-${process.pid}-${++counter}`);
      fs.mkdirSync(dir);
      liveCgroups.add(dir);
      cgroupDirs.push({ controller: cg.controller, ctl: cg.ctl, dir });
      for (const [file, value] of cg.settings) {
        const f = path.join(dir, file);
        // memory.swap.max / memsw exist only with swap accounting: optional.
        const optional = file === 'memory.swap.max' || file === 'memory.memsw.limit_in_bytes';
        if (optional && !fs.existsSync(f)) continue;
        try {
          fs.writeFileSync(f, value);
        } catch (e) {
          if (!optional) throw new Error(`cannot write ${value} to ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        }
      }
    }
  } catch (e) {
    cleanup();
    throw e;
  }
  const wrapped = Boolean(plan.shell && (cgroupDirs.length || plan.taskset || plan.prlimit));
  const childEnv: NodeJS.ProcessEnv = {};
  if (wrapped) {
    childEnv.SPARTAN_BENCH_CGROUP_PROCS = cgroupDirs.map((c) => path.join(c.dir, 'cgroup.procs')).join('\n');
    if (plan.taskset) {
      childEnv.SPARTAN_BENCH_CPUS = plan.taskset.cpus;
      childEnv.SPARTAN_BENCH_TASKSET = plan.taskset.tool;
    }
    if (plan.prlimit) {
      childEnv.SPARTAN_BENCH_AS = String(plan.prlimit.bytes);
      childEnv.SPARTAN_BENCH_PRLIMIT = plan.prlimit.tool;
    }
  }
  const child = spawnEngine<T>(entry, args, {
    stdin: 'pipe',
    env: childEnv,
    via: wrapped ? [plan.shell!, '-c', WRAPPER, 'spartan-bench-wrapper'] : undefined,
  });
  installExitHook();
  liveChildren.add(child);
  void child.exit.then(() => liveChildren.delete(child));
  let disposed = false;
  return {
    child,
    cgroupDirs,
    dispose() {
      if (disposed) return { oomKills: null };
      disposed = true;
      let oomKills: number | null = null;
      const mem = cgroupDirs.find((c) => c.controller === 'memory');
      if (mem) {
        // v2: memory.events "oom_kill N"; v1: memory.oom_control "oom_kill N" (newer kernels).
        for (const f of ['memory.events', 'memory.oom_control']) {
          try {
            const m = /^oom_kill (\d+)$/m.exec(fs.readFileSync(path.join(mem.dir, f), 'utf8'));
            if (m) {
              oomKills = Number(m[1]);
              break;
            }
          } catch {
            // not this version's file
          }
        }
      }
      cleanup();
      return { oomKills };
    },
  };
}
