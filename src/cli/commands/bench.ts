/**
 * `spartan bench`: the constrained-CPU throughput report (inference instances/minute, fine-tuning examples/second,
 * storage per task, peak RSS) of SPARTAN and the baselines under device profiles (Raspberry Pi 4, iPhone 11 class,
 * this machine, custom). Each measurement runs in a `spartan bench-worker` child process (hidden command) under
 * the profile's constraints; see src/lab/bench/report.ts and constraints.ts.
 */
import * as fs from 'fs';
import * as path from 'path';
import { Command, Option } from 'commander';
import {
  METHODS,
  MethodName,
  writeFileAtomic,
  checkOutputPath,
  SpartanError,
  checkSequenceLength,
  backboneConfigOf,
  selfEntry,
} from '../../engine';
import { DEFAULT_PROFILES, parseCpuQuotaFlag, parseProfileList } from '../../lab/bench/profiles';
import { formatReport, runBench, runBenchWorker, toCsv } from '../../lab/bench/report';
import { stopAllWorkers } from '../../lab/bench/constraints';
import { makeOutput } from '../output';
import type { BenchEvent } from '../../protocol/commands';
import { defaultThreads, intOption, quantizeOption, resolveBackboneSpec } from '../options';

function parseMethods(value: string): MethodName[] {
  const names = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new SpartanError('--methods: no method named');
  for (const n of names)
    if (!METHODS.includes(n as MethodName)) throw new SpartanError(`--methods: unknown method "${n}": choose from ${METHODS.join(', ')}`);
  return [...new Set(names)] as MethodName[];
}

export function registerBench(program: Command): void {
  program
    .command('bench')
    .description('throughput report under device profiles: inference instances/min, training examples/s, storage, peak RSS')
    .option('--backbone <dir|synthetic:NAME|embedded>', 'frozen backbone', 'synthetic:roberta-base')
    .option(
      '--methods <list>',
      `comma-separated, from ${METHODS.join(', ')} (plain RoBERTa = head is always measured as the baseline)`,
      'spartan,pfeiffer,houlsby,head',
    )
    .option('--profiles <list>', 'comma-separated, from rpi4, iphone11, host, custom', DEFAULT_PROFILES.join(','))
    .option('--batch <n>', 'inference batch size (the paper: 32)', intOption(1), 32)
    .option('--seq <n>', 'tokens per sequence (the paper: 128)', intOption(4), 128)
    .option('--train-batch <n>', 'fine-tuning batch size', intOption(1), 16)
    .option('--warmup <n>', 'untimed repetitions per worker', intOption(0), 1)
    .option('--reps <n>', 'timed repetitions (median, min, max)', intOption(1), 3)
    .option('--quick', 'smoke run: 1 repetition, no warm-up')
    .option('--cores <n>', 'custom profile: cores', intOption(1))
    .option('--memory-mb <n>', 'custom profile: memory limit in MB', intOption(64))
    .option(
      '--cpu-quota <f|name=f,…>',
      'per-core speed as a fraction of a host core (cgroup cpu.max): one number for rpi4, iphone11 and custom, or NAME=F pairs',
    )
    .option('--threads <n>', 'upper bound on intra-op threads for every profile', intOption(1))
    .option('--no-cgroups', 'do not use cgroups (memory falls back to prlimit --as; no CPU quota)')
    .addOption(quantizeOption('backbone precision of every measurement').default('none'))
    .option('--csv <file>', 'also write one CSV row per profile × method')
    .option('--json', 'JSON result on stdout, JSON-lines progress on stderr')
    .action(async (o) => {
      const out = makeOutput(Boolean(o.json));
      if (o.csv !== undefined) checkOutputPath(o.csv, '--csv'); // before an hour of measurements
      const methods = parseMethods(o.methods);
      const profiles = parseProfileList(o.profiles);
      if ((o.cores !== undefined || o.memoryMb !== undefined) && !profiles.includes('custom')) {
        throw new SpartanError('--cores and --memory-mb describe the custom profile: add custom to --profiles');
      }
      if (o.cpuQuota !== undefined) parseCpuQuotaFlag(o.cpuQuota); // fail early on a bad value
      // A profile is emulated by pinning threads to this machine's CPUs: more cores than it has cannot be measured.
      if (o.cores !== undefined && o.cores > defaultThreads()) {
        throw new SpartanError(
          `--cores ${o.cores}: this machine has ${defaultThreads()} CPU(s) available; the custom profile cannot have more`,
        );
      }
      checkSequenceLength(o.seq, backboneConfigOf(resolveBackboneSpec(o.backbone)), '--seq');
      const quick = Boolean(o.quick);
      const signal = new AbortController();
      const stop = () => {
        signal.abort();
        // Kill the workers now (one may be in the middle of a long step) so that their cgroups can be removed.
        stopAllWorkers();
        process.exit(130);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      const report = await runBench({
        backbone: resolveBackboneSpec(o.backbone),
        methods,
        profiles,
        batch: o.batch,
        seq: o.seq,
        trainBatch: o.trainBatch,
        warmup: quick ? 0 : o.warmup,
        reps: quick ? 1 : o.reps,
        flags: { cores: o.cores, memoryMB: o.memoryMb, cpuQuota: o.cpuQuota, threadsCap: o.threads },
        noCgroups: o.cgroups === false,
        quantize: o.quantize,
        // The worker is this very CLI, started the way this process was (node [flags] dist/cli.js, or tsx).
        worker: selfEntry(),
        signal: signal.signal,
        onEvent: (raw) => {
          // The engine emits these as loose records; their shape is the protocol's BenchEvent.
          const e = raw as unknown as BenchEvent;
          const human =
            e.stage === 'rep'
              ? `${e.profile} ${e.method} ${e.phase} rep ${e.rep}/${e.reps}: ${(e.seconds ?? 0).toFixed(3)} s`
              : e.stage === 'setup'
                ? `${e.profile} ${e.method} ${e.phase}: starting worker`
                : e.stage === 'error'
                  ? `${e.profile} ${e.method} ${e.phase} FAILED: ${e.error}`
                  : undefined;
          out.event(raw, human);
        },
      });
      process.removeListener('SIGINT', stop);
      process.removeListener('SIGTERM', stop);
      if (o.csv) {
        fs.mkdirSync(path.dirname(path.resolve(o.csv)), { recursive: true });
        writeFileAtomic(o.csv, toCsv(report));
        out.info(`wrote ${o.csv}`);
      }
      out.result(report, formatReport(report));
      // A report with failed measurements is not a success (a worker killed by the memory limit, …).
      const failed = [
        ...new Set(
          report.profiles.flatMap((p) =>
            [p.baseline, ...p.results].flatMap((m) =>
              Object.entries(m.errors).map(([phase, e]) => `${p.profile} ${m.method} ${phase}: ${e}`),
            ),
          ),
        ),
      ];
      if (failed.length) throw new SpartanError(`${failed.length} measurement(s) failed; first: ${failed[0]}`);
    });

  // The measurement process of `bench` (hidden): protocol in src/lab/bench/report.ts.
  program
    .command('bench-worker', { hidden: true })
    .requiredOption('--backbone <spec>')
    .addOption(new Option('--method <name>').choices(METHODS).makeOptionMandatory())
    .addOption(new Option('--phase <phase>').choices(['inference', 'training']).makeOptionMandatory())
    .requiredOption('--batch <n>', '', intOption(1))
    .requiredOption('--seq <n>', '', intOption(4))
    .requiredOption('--threads <n>', '', intOption(1))
    .option('--warmup <n>', '', intOption(0), 1)
    .addOption(quantizeOption())
    .action(async (o) => {
      await runBenchWorker({
        backbone: o.backbone,
        method: o.method,
        phase: o.phase,
        batch: o.batch,
        seq: o.seq,
        threads: o.threads,
        warmup: o.warmup,
        quantize: o.quantize,
      });
    });
}
