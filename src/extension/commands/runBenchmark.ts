/**
 * *Run Benchmark*: `spartan bench`, quick (the embedded backbone, this machine, SPARTAN against the plain head) or
 * in the paper's setting (constrained-CPU profiles); the report goes to the benchmark panel.
 */
import * as vscode from 'vscode';
import { BenchmarkPanel } from '../benchmarkPanel';
import type { Ctx } from '../ctx';
import { formatSeconds } from '../memoryFiles';
import { engineTask } from '../taskHost';
import type { BenchOptions, ResultOf } from '../../protocol/commands';
import { asOptions, type Cmd } from './args';

type Mode = 'quick' | 'full';

export function runBenchmark(ctx: Ctx): Cmd {
  return (arg?: unknown) =>
    engineTask(
      ctx,
      { trust: 'run benchmarks', what: 'benchmark', cancelled: 'Benchmark cancelled.' },
      async (task): Promise<ResultOf<'bench'>> => {
        const mode = task.need(asOptions<{ mode?: Mode }>(arg).mode ?? (await pickMode()));
        const threads = ctx.config.threads || undefined;
        const options: BenchOptions =
          mode === 'quick'
            ? { backbone: ctx.embeddedBackbone, profiles: ['host'], methods: ['spartan', 'head'], quick: true, batch: 8, seq: 64, threads }
            : { threads };
        BenchmarkPanel.show(ctx);
        const r = await task.run(mode === 'quick' ? 'Spartan benchmark (quick)' : 'Spartan benchmark', (signal, report) =>
          ctx.runCommand('bench', options, {
            signal,
            onEvent: (e) => {
              const what = [e.stage, e.profile, e.method, e.phase, e.rep !== undefined ? `rep ${e.rep}/${e.reps ?? '?'}` : '']
                .filter((x) => x !== undefined && x !== '')
                .join(' · ');
              if (what) report({ message: what });
            },
          }),
        );
        await ctx.setBenchReport({ ranAt: new Date().toISOString(), ...r.result });
        ctx.log.info(`benchmark (${mode}) finished in ${formatSeconds(r.seconds)}: ${r.result.rows.length} rows`);
        return r.result;
      },
    );
}

async function pickMode(): Promise<Mode | undefined> {
  const pick = await vscode.window.showQuickPick(
    [
      {
        label: '$(zap) Quick check',
        description: 'seconds',
        detail: 'Embedded backbone, this machine only, SPARTAN against the plain head, batch 8 × 64 tokens, one repetition.',
        mode: 'quick' as const,
      },
      {
        label: '$(dashboard) Paper setting',
        description: 'several minutes',
        detail:
          'roberta-base-sized backbone (synthetic weights, nothing downloaded), Raspberry Pi 4, iPhone 11 and this machine profiles, SPARTAN, adapters and the plain head, batch 32 × 128 tokens.',
        mode: 'full' as const,
      },
    ],
    { title: 'Spartan benchmark', placeHolder: 'Which benchmark?' },
  );
  return pick?.mode;
}
