/**
 * Device profiles of `spartan bench`: the constrained CPUs the paper's comparison is about (a Raspberry Pi 4, an
 * iPhone 11 class phone), this machine as it is, and a custom one from flags. A profile is a *description*
 * (cores, memory, how fast one of its cores is against one of this machine's); `resolveProfile` turns it into what
 * can be asked of this machine (threads, the CPUs to pin to, the limits). Whether the OS really enforces those is
 * constraints.ts's job. No vscode import: the CLI, the tests and the extension's engine process share this.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import { SpartanError } from '../../engine';

export type ProfileName = 'rpi4' | 'iphone11' | 'host' | 'custom';
export const PROFILE_NAMES: ProfileName[] = ['rpi4', 'iphone11', 'host', 'custom'];
export const DEFAULT_PROFILES: ProfileName[] = ['rpi4', 'iphone11', 'host'];

export interface DeviceProfile {
  name: ProfileName;
  label: string;
  /** Cores of the device; null: every core this process may use. */
  cores: number | null;
  /** Memory of the device in MB; null: no limit. */
  memoryMB: number | null;
  /**
   * Compute of one device core as a fraction of one core of this machine (emulated with a CPU-time quota);
   * null: unthrottled.
   */
  cpuQuota: number | null;
  /** What the device is, for the report. */
  cpu: string;
  /** Why the numbers are what they are (shown in the report: they are approximations). */
  rationale: string;
}

/*
 * The quota factors are rough, deliberately simple approximations, which is why `--cpu-quota` overrides them:
 *  - rpi4, Cortex-A72 at 1.5 GHz: a 128-bit NEON core with one FMA pipe, an in-order-ish memory system and no
 *    L3, against an x86 server/desktop core with AVX2/AVX-512 at 2.5–4 GHz. General-purpose single-core scores
 *    put an A72 at roughly 0.25–0.35 of such a core (Geekbench-class ratios); 0.35 is the optimistic end. For
 *    GEMM-bound work (which RoBERTa is) the gap in vector width makes the real ratio lower still, so rpi4 figures
 *    are an upper bound of what a Pi does.
 *  - iphone11, Apple A13: 2 "Lightning" performance cores about as fast as a desktop x86 core, 4 "Thunder"
 *    efficiency cores at roughly a third of that; 0.8 per core credits the phone with its big cores' speed for
 *    the first threads (the ones an intra-op pool fills first) and ignores thermal throttling, so it is also on
 *    the optimistic side. iOS lets one app use far less than the 4 GB of RAM (jetsam limits around 2–3 GB).
 * A CPU-time quota (cgroup cpu.max) makes a host core *deliver* that fraction of its time; it does not change the
 * cache sizes or the vector width, so it approximates throughput, not the micro-architecture.
 */
export const PROFILES: Record<Exclude<ProfileName, 'custom'>, DeviceProfile> = {
  rpi4: {
    name: 'rpi4',
    label: 'Raspberry Pi 4',
    cores: 4,
    memoryMB: 8192,
    cpuQuota: 0.35,
    cpu: 'Cortex-A72 1.5 GHz ×4',
    rationale: 'one A72 core ≈ 0.35 of an x86 core (optimistic end of single-core ratios; GEMM gap is larger)',
  },
  iphone11: {
    name: 'iphone11',
    label: 'iPhone 11 class',
    cores: 6,
    memoryMB: 4096,
    cpuQuota: 0.8,
    cpu: 'Apple A13 (2 performance + 4 efficiency cores)',
    rationale: 'A13 cores ≈ 0.8 of an x86 core on average over the threads used (big cores first; no thermal throttling)',
  },
  host: {
    name: 'host',
    label: 'this machine',
    cores: null,
    memoryMB: null,
    cpuQuota: null,
    cpu: `${os.cpus()[0]?.model?.trim() ?? 'unknown CPU'}`,
    rationale: 'every core this process may use, no limits',
  },
};

export interface CustomFlags {
  cores?: number;
  memoryMB?: number;
  /** A plain number (every throttled profile) or per-profile `name=F` pairs, e.g. `rpi4=0.3,iphone11=0.6`. */
  cpuQuota?: string;
  /** An upper bound on intra-op threads for every profile (the extension's `spartan.threads`). */
  threadsCap?: number;
}

/** A profile made concrete for this machine. */
export interface ResolvedProfile extends DeviceProfile {
  /** CPUs this process may run on (its affinity mask), in order. */
  availableCpus: number[];
  /** Intra-op threads: min(profile cores, available cores[, threads cap]). */
  threads: number;
  /** The CPUs to pin the worker to: the first `threads` available ones; null when nothing to pin (host). */
  affinity: number[] | null;
  /** True when the profile wants more cores than this machine offers (only `threads` are emulated). */
  coresCapped: boolean;
  /** Where the cpuQuota came from. */
  cpuQuotaSource: 'profile' | 'flag' | 'none';
}

/** The CPUs this process may run on: /proc/self/status Cpus_allowed_list on Linux, else 0…N−1. */
export function availableCpus(): number[] {
  try {
    const status = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^Cpus_allowed_list:\s*(.+)$/m.exec(status);
    if (m) {
      const cpus = parseCpuList(m[1].trim());
      if (cpus.length) return cpus;
    }
  } catch {
    // not Linux: fall through
  }
  const n = Math.max(1, (os as { availableParallelism?: () => number }).availableParallelism?.() ?? os.cpus().length);
  return Array.from({ length: n }, (_, i) => i);
}

/** Parses a kernel CPU list ("0-3,6,8-9"). */
export function parseCpuList(list: string): number[] {
  const out: number[] = [];
  for (const part of list
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) throw new SpartanError(`cannot parse CPU list "${list}"`);
    const lo = Number(m[1]),
      hi = m[2] === undefined ? lo : Number(m[2]);
    for (let c = lo; c <= hi; c++) out.push(c);
  }
  return out;
}

/** Parses `--cpu-quota`: "0.3" (every throttled profile) or "rpi4=0.3,custom=0.5". */
export function parseCpuQuotaFlag(value: string): { all?: number; byProfile: Map<string, number> } {
  const byProfile = new Map<string, number>();
  const check = (s: string): number => {
    const n = Number(s);
    if (!Number.isFinite(n) || n <= 0 || n > 1) throw new SpartanError(`--cpu-quota: expected a fraction in (0, 1], got "${s}"`);
    return n;
  };
  if (!value.includes('=')) return { all: check(value.trim()), byProfile };
  for (const pair of value.split(',')) {
    const [name, v] = pair.split('=').map((s) => s.trim());
    if (!PROFILE_NAMES.includes(name as ProfileName) || v === undefined) {
      throw new SpartanError(`--cpu-quota: "${pair}" is not NAME=FRACTION with NAME one of ${PROFILE_NAMES.join(', ')}`);
    }
    byProfile.set(name, check(v));
  }
  return { byProfile };
}

/** Parses a comma-separated `--profiles` list. */
export function parseProfileList(value: string): ProfileName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new SpartanError('--profiles: no profile named');
  for (const n of names) {
    if (!PROFILE_NAMES.includes(n as ProfileName))
      throw new SpartanError(`--profiles: unknown profile "${n}": choose from ${PROFILE_NAMES.join(', ')}`);
  }
  return [...new Set(names)] as ProfileName[];
}

/**
 * Resolves one profile for this machine. `--cores`/`--memory-mb` describe the custom profile only; `--cpu-quota`
 * overrides the quota of rpi4, iphone11 and custom (host is "no limits" by definition, unless named explicitly
 * with `host=F`).
 */
export function resolveProfile(name: ProfileName, flags: CustomFlags = {}, cpus: number[] = availableCpus()): ResolvedProfile {
  const base: DeviceProfile =
    name === 'custom'
      ? {
          name: 'custom',
          label: 'custom',
          cores: flags.cores ?? null,
          memoryMB: flags.memoryMB ?? null,
          cpuQuota: null,
          cpu: 'from --cores / --memory-mb / --cpu-quota',
          rationale: 'as given on the command line',
        }
      : { ...PROFILES[name] };
  let cpuQuotaSource: ResolvedProfile['cpuQuotaSource'] = base.cpuQuota === null ? 'none' : 'profile';
  if (flags.cpuQuota !== undefined) {
    const q = parseCpuQuotaFlag(flags.cpuQuota);
    const v = q.byProfile.get(name) ?? (name === 'host' ? undefined : q.all);
    if (v !== undefined) {
      base.cpuQuota = v;
      cpuQuotaSource = 'flag';
    }
  }
  const wanted = base.cores ?? cpus.length;
  let threads = Math.min(wanted, cpus.length);
  if (flags.threadsCap !== undefined && flags.threadsCap > 0) threads = Math.min(threads, flags.threadsCap);
  threads = Math.max(1, threads);
  return {
    ...base,
    availableCpus: cpus,
    threads,
    // The host profile pins nothing unless the threads were capped: pinning to every CPU would be a no-op.
    affinity: base.cores === null && threads === cpus.length ? null : cpus.slice(0, threads),
    coresCapped: base.cores !== null && base.cores > cpus.length,
    cpuQuotaSource,
  };
}

/** Formats a CPU list compactly ("0-3,6"), as taskset -c takes it. */
export function formatCpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length;) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(j > i ? `${cpus[i]}-${cpus[j]}` : String(cpus[i]));
    i = j + 1;
  }
  return parts.join(',');
}
