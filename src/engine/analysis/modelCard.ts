/**
 * A Markdown model card for a memory (after Mitchell et al. 2019, "Model Cards for Model Reporting", trimmed to
 * what a memory file knows): data by sha256 and row counts, labels and their counts, backbone by name and hash,
 * method and hyper-parameters, dev metrics with the calibration, training time, and the command that reproduces
 * it. Everything is read from the memory's metadata; nothing is typed in by hand.
 */
import type { MemoryMetadata } from '../memory/memoryFile';

function cell(v: unknown): string {
  const s = typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(4)) : typeof v === 'string' ? v : JSON.stringify(v);
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function table(header: [string, string], rows: [string, unknown][]): string[] {
  return [`| ${header[0]} | ${header[1]} |`, '|---|---|', ...rows.map(([k, v]) => `| ${cell(k)} | ${cell(v)} |`)];
}

/** Quotes an argument for a POSIX shell when it needs it. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+,-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

export function modelCard(memoryName: string, meta: MemoryMetadata, memorySha256: string, memoryBytes: number): string {
  const p = meta.provenance;
  const c = meta.calibration;
  const m = meta.metrics;
  const out: string[] = [`# Model card: ${memoryName}`, ''];
  const kind = meta.task === 'multilabel' ? 'multi-label classification' : meta.task;
  out.push(`A ${meta.method} task memory for **${kind}** on a frozen \`${meta.backbone.name}\`, created ${meta.createdAt}.`, '');
  out.push('## Files', '');
  out.push(
    ...table(
      ['', ''],
      [
        ['memory', `${memoryName} (${memoryBytes} bytes, sha256 \`${memorySha256}\`)`],
        ['backbone', `${meta.backbone.name} (weights sha256 \`${meta.backbone.sha256}\`)`],
        ['tokenizer hash', meta.tokenizerHash || 'unknown'],
        ...(p ? ([['training data', `${p.data.file}: ${p.data.rows} rows (sha256 \`${p.data.sha256}\`)`]] as [string, unknown][]) : []),
        ...(p?.dev
          ? ([['dev data', `${p.dev.file}: ${p.dev.rows} rows${p.dev.sha256 ? ` (sha256 \`${p.dev.sha256}\`)` : ''}`]] as [
              string,
              unknown,
            ][])
          : []),
      ],
    ),
    '',
  );
  if (!p) out.push('_This memory was saved before provenance was recorded: the data files and the command are unknown._', '');

  if (meta.task !== 'regression') {
    out.push('## Labels', '');
    out.push(
      ...table(
        ['label', 'training rows'],
        meta.labels.map((l) => [l, p?.labelCounts[l] ?? 'unknown']),
      ),
      '',
    );
    if (meta.task === 'multilabel') out.push('A row may carry any number of these labels (sigmoid outputs, one per label).', '');
  }

  out.push('## Method and hyper-parameters', '');
  out.push(
    ...table(
      ['name', 'value'],
      Object.entries(meta.hyperparameters).filter(([, v]) => v !== null && v !== undefined),
    ),
    '',
  );

  out.push('## Metrics', '');
  const metricRows = Object.entries(m).filter(
    ([k, v]) => typeof v === 'number' && !['bestEpoch', 'trainRows', 'devRows', 'truncated', 'seconds'].includes(k),
  );
  if (metricRows.length)
    out.push(`On the dev rows, at the best epoch (${cell(m.bestEpoch)}):`, '', ...table(['metric', 'value'], metricRows), '');
  else out.push('No dev set: no metrics were measured while training. Run `spartan eval` on a held-out file.', '');
  out.push('### Calibration', '');
  if (c?.fitted) {
    out.push(
      `Probabilities are softmax${meta.task === 'multilabel' ? ' (sigmoid)' : ''}(logits / T) with T = ${c.temperature.toFixed(4)}, fitted on ${c.fittedOn} (${c.rows} rows):`,
      '',
    );
    out.push(
      ...table(
        ['', 'uncalibrated (T = 1) → calibrated'],
        [
          ['expected calibration error (15 bins)', `${cell(c.ece?.uncalibrated)} → ${cell(c.ece?.calibrated)}`],
          ['negative log-likelihood', `${cell(c.nll?.uncalibrated)} → ${cell(c.nll?.calibrated)}`],
        ],
      ),
      '',
    );
    if (c.thresholds)
      out.push(
        'Per-label thresholds (tuned on the same rows for F1):',
        '',
        ...table(['label', 'threshold'], Object.entries(c.thresholds)),
        '',
      );
  } else {
    out.push(
      meta.task === 'regression'
        ? 'Regression scores are not calibrated.'
        : 'Not calibrated (no dev set when it was trained): probabilities are the plain softmax.',
      '',
    );
  }

  out.push('## Training', '');
  out.push(
    `${cell(m.trainRows ?? p?.data.rows ?? 'unknown')} training rows, ${cell(meta.hyperparameters.steps ?? 'unknown')} steps, ${typeof m.seconds === 'number' ? `${m.seconds.toFixed(1)} s` : 'unknown time'}${typeof m.truncated === 'number' && m.truncated ? `; ${m.truncated} rows truncated` : ''}.`,
    '',
  );
  if (p) out.push('Reproduce with:', '', '```sh', p.command.map(shellQuote).join(' '), '```', '');
  return out.join('\n');
}
