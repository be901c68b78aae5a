/**
 * The benchmark panel's page (bundled by esbuild into dist/webview/panel.js; runs in the webview under a strict
 * CSP: no inline code, no remote content). Draws the data the extension posts (src/protocol/webview.ts) as
 * inline SVG, keeps it with `setState` so the panel redraws at once when shown again, and reports what it drew.
 */
import type { PanelState, ToExtension, ToWebview } from '../protocol/webview';
import { renderBench } from './bench';
import { renderCurves } from './curves';
import { contentOf } from './dom';
import { renderEvaluation } from './evaluation';
import { renderRouting } from './routing';

/** VS Code's webview API: posts messages to the extension and keeps the panel's state across reloads. */
declare function acquireVsCodeApi(): {
  postMessage(message: ToExtension): void;
  getState(): Partial<PanelState> | undefined;
  setState(state: PanelState): void;
};

const vscode = acquireVsCodeApi();
const post = (m: ToExtension) => vscode.postMessage(m);
let state: PanelState = {
  curves: [],
  bench: null,
  live: null,
  routing: null,
  routingView: 'counts',
  evaluation: null,
  ...vscode.getState(),
};

function section(id: string): HTMLElement {
  const s = document.getElementById(id);
  if (!s) throw new Error(`the panel has no #${id}`);
  return s;
}

function render(): void {
  const curves = renderCurves(contentOf(section('curves')), state);
  const bench = renderBench(contentOf(section('bench')), state.bench);
  const routing = renderRouting(
    section('routing'),
    state.routing,
    state.routingView === 'gate' ? 'gate' : 'counts',
    (v) => {
      state.routingView = v;
      vscode.setState(state);
      scheduleRender();
    },
    post,
  );
  const evaluation = renderEvaluation(section('evaluation'), state.evaluation, post);
  post({
    type: 'rendered',
    charts: document.querySelectorAll('svg.chart').length,
    curves,
    benchRows: bench.rows,
    routing,
    evaluation,
    heatCells: document.querySelectorAll('svg.heatmap:not(.confusion) rect.heat-cell:not(.legend-cell)').length,
  });
}

let pending = false;
/** The id of the section to scroll to after the next render. */
let reveal: string | undefined;

function scheduleRender(): void {
  if (pending) return;
  pending = true;
  requestAnimationFrame(() => {
    pending = false;
    render();
    if (reveal) {
      const sec = document.getElementById(reveal);
      reveal = undefined;
      if (sec && !sec.hidden) sec.scrollIntoView({ block: 'start' });
    }
  });
}

/** Applies a message to the state; false when it changes nothing. */
function apply(m: ToWebview): boolean {
  if (m.type === 'update') {
    state = {
      curves: m.curves || [],
      bench: m.bench || null,
      live: null,
      routing: m.routing || null,
      routingView: state.routingView || 'counts',
      evaluation: m.evaluation || null,
    };
    if (m.reveal === 'routing' || m.reveal === 'evaluation') reveal = m.reveal;
    return true;
  }
  if (m.command !== 'train') return false;
  const e = m.event;
  if (e.event === 'start') state.live = { steps: [], evals: [], totalSteps: e.steps };
  else if (e.event === 'step' && state.live) state.live.steps.push([Number(e.step), Number(e.loss)]);
  else if (e.event === 'eval' && state.live)
    state.live.evals.push({ step: (state.live.steps[state.live.steps.length - 1] || [0])[0], epoch: e.epoch, metrics: e.metrics || {} });
  else return false;
  return true;
}

window.addEventListener('message', (ev: MessageEvent<ToWebview>) => {
  if (!apply(ev.data)) return;
  vscode.setState(state);
  scheduleRender();
});
const buttons: [string, ToExtension][] = [
  ['run-bench', { type: 'runBench' }],
  ['open-report', { type: 'openReport' }],
  ['fine-tune', { type: 'fineTune' }],
  ['show-log', { type: 'showLog' }],
];
for (const [id, message] of buttons) document.getElementById(id)?.addEventListener('click', () => post(message));
render();
post({ type: 'ready' });
