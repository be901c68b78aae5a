// Globals of the webview scripts (media/*.js), for `tsc -p tsconfig.webview.json`.
import type { PanelState, ToExtension } from '../src/protocol/webview';

declare global {
  /** VS Code's webview API: posts messages to the extension and keeps the panel's state across reloads. */
  function acquireVsCodeApi(): {
    postMessage(message: ToExtension): void;
    getState(): Partial<PanelState> | undefined;
    setState(state: PanelState): void;
  };
  interface Window {
    SpartanHeatmap: unknown;
    SpartanEvaluation: unknown;
  }
}
