/** The panel's training section: the loss curves of the last fine-tunes (and the running one), and their dev metric. */
import type { PanelState, TrainingCurve } from '../protocol/webview';
import { lineChart, type LineSeries } from './charts';
import { el } from './dom';

/** Draws the curves into `target`; returns how many charts. */
export function renderCurves(target: HTMLElement, state: Pick<PanelState, 'curves' | 'live'>): number {
  const curves = (state.curves || []).slice(-5);
  const live: TrainingCurve[] =
    state.live && state.live.steps.length
      ? [{ task: 'running…', memory: '', startedAt: '', steps: state.live.steps, evals: state.live.evals }]
      : [];
  const all = curves.concat(live);
  target.replaceChildren();
  if (!all.length) {
    target.append(el('p', { class: 'empty' }, 'No training yet. Fine-tune a memory to see its loss curve here.'));
    return 0;
  }
  let n = 0;
  target.append(
    lineChart(
      'Training loss',
      all.map((c) => ({ name: `${c.task}${c.startedAt ? ' · ' + new Date(c.startedAt).toLocaleTimeString() : ''}`, points: c.steps })),
      'step',
      'loss',
    ),
  );
  n++;
  const evalSeries: LineSeries[] = all
    .filter((c) => c.evals && c.evals.length)
    .map((c) => {
      const key = Object.keys(c.evals[0].metrics || {})[0];
      return {
        name: `${c.task} · dev ${key}`,
        points: c.evals.map((e): [number, number] => [e.step, e.metrics[key]]),
        markers: c.evals.map((e): [number, number, string] => [
          e.step,
          e.metrics[key],
          `epoch ${e.epoch}: ${Object.entries(e.metrics)
            .map(([k, v]) => k + ' ' + Number(v).toFixed(3))
            .join(', ')}`,
        ]),
      };
    });
  if (evalSeries.length) {
    target.append(lineChart('Dev metric per epoch', evalSeries, 'step', 'metric'));
    n++;
  }
  return n;
}
