/**
 * The trainer's progress events (`train --json` on stderr, each fold of `audit`, and what the extension forwards
 * to the panel's live curve). A leaf module with no imports, so the webview's type check can read it too.
 */
export type TrainEvent =
  | {
      event: 'start';
      steps: number;
      epochs: number;
      examples: number;
      devExamples: number;
      trainableParameters: number;
      truncated: number;
      devTruncated: number;
    }
  | { event: 'step'; step: number; steps: number; epoch: number; loss: number; lr: number; gradNorm: number; examplesPerSecond: number }
  | { event: 'eval'; epoch: number; step: number; metrics: Record<string, number>; best: boolean }
  | { event: 'done'; steps: number; seconds: number };

/** `spartan bench` progress: one event per stage of the measurement plan. */
export interface BenchEvent {
  event: 'bench';
  stage: 'start' | 'profile' | 'setup' | 'rep' | 'error' | 'profileDone' | 'done';
  profile?: string;
  method?: string;
  phase?: string;
  rep?: number;
  reps?: number;
  seconds?: number;
  error?: string;
}
