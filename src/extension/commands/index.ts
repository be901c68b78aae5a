/**
 * Every command of the extension, one file each (as rust-analyzer's editors/code does it): the id package.json
 * contributes and the factory of its handler. extension.ts registers this list and nothing else.
 */
import type { CommandEntry } from './args';
import { cancelFineTune } from './cancelFineTune';
import { classifySelection } from './classifySelection';
import { downloadBackbone } from './downloadBackbone';
import { evaluate } from './evaluate';
import { exportModel } from './exportModel';
import { findSuspectLabels } from './findSuspectLabels';
import { fineTune } from './fineTune';
import { runBenchmark } from './runBenchmark';
import { selectMemory } from './selectMemory';
import { showBenchmark } from './showBenchmark';
import { showRouting } from './showRouting';
import { suggestRowsToLabel } from './suggestRowsToLabel';

export type { Cmd, CommandEnv, CommandEntry } from './args';

export const COMMANDS: readonly CommandEntry[] = [
  { id: 'spartan.fineTune', factory: fineTune },
  { id: 'spartan.cancelFineTune', factory: cancelFineTune },
  { id: 'spartan.classifySelection', factory: classifySelection },
  { id: 'spartan.selectMemory', factory: selectMemory },
  { id: 'spartan.evaluate', factory: evaluate },
  { id: 'spartan.showBenchmark', factory: showBenchmark },
  { id: 'spartan.runBenchmark', factory: runBenchmark },
  { id: 'spartan.downloadBackbone', factory: downloadBackbone },
  { id: 'spartan.export', factory: exportModel },
  { id: 'spartan.showRouting', factory: showRouting },
  { id: 'spartan.findSuspectLabels', factory: findSuspectLabels },
  { id: 'spartan.suggestRowsToLabel', factory: suggestRowsToLabel },
];
