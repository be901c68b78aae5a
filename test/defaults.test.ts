/**
 * Training defaults live in the engine (engine/training/defaults.ts): the CLI's options, the extension's
 * settings and package.json's Settings UI must all show the same ones.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command } from 'commander';
import { TRAINING_DEFAULTS } from '../src/engine/training/defaults';
import { DEFAULT_GEOMETRY } from '../src/engine/methods/spartan';
import { QUANTIZE_MODES } from '../src/engine/models/quantize';
import { TRAINING_DEFAULTS as SETTINGS } from '../src/extension/trainingSettings';
import { registerTrain } from '../src/cli/commands/train';
import { registerGlue } from '../src/cli/commands/glue';
import { repoRoot } from '../src/engine/models/backbone';

const pkg = JSON.parse(fs.readFileSync(path.join(repoRoot(), 'package.json'), 'utf8'));

test("package.json's spartan.training.* defaults are the extension's, and every setting is declared", () => {
  const props = pkg.contributes.configuration.properties as Record<string, { default?: unknown }>;
  const declared = Object.keys(props)
    .filter((k) => k.startsWith('spartan.training.'))
    .map((k) => k.slice('spartan.training.'.length));
  assert.deepEqual(declared.sort(), Object.keys(SETTINGS).sort());
  for (const [k, v] of Object.entries(SETTINGS)) assert.equal(props[`spartan.training.${k}`].default, v, `spartan.training.${k}`);
});

test("package.json's spartan.quantize offers the engine's modes, float32 by default", () => {
  const q = pkg.contributes.configuration.properties['spartan.quantize'];
  assert.deepEqual(q.enum, [...QUANTIZE_MODES]);
  assert.equal(q.default, 'none');
});

test('the CLI options default to the engine defaults (train and glue run)', () => {
  const program = new Command();
  registerTrain(program);
  registerGlue(program);
  const defaults = (cmd: Command) => Object.fromEntries(cmd.options.map((o) => [o.attributeName(), o.defaultValue]));
  const train = defaults(program.commands.find((c) => c.name() === 'train')!);
  const glueRun = defaults(program.commands.find((c) => c.name() === 'glue')!.commands.find((c) => c.name() === 'run')!);
  const expected = {
    parents: DEFAULT_GEOMETRY.parents,
    children: DEFAULT_GEOMETRY.children,
    topK: DEFAULT_GEOMETRY.topK,
    temperature: DEFAULT_GEOMETRY.temperature,
    batchSize: TRAINING_DEFAULTS.batchSize,
    maxLength: TRAINING_DEFAULTS.maxLength,
    dropout: TRAINING_DEFAULTS.dropout,
    warmup: TRAINING_DEFAULTS.warmupRatio,
    weightDecay: TRAINING_DEFAULTS.weightDecay,
    clip: TRAINING_DEFAULTS.clipNorm,
    epochs: TRAINING_DEFAULTS.epochs,
  };
  for (const [k, v] of Object.entries(expected)) {
    assert.equal(train[k], v, `train --${k}`);
    assert.equal(glueRun[k], v, `glue run --${k}`);
  }
  assert.equal(train.lr, TRAINING_DEFAULTS.lr);
  assert.equal(train.seed, TRAINING_DEFAULTS.seed);
  assert.equal(train.patience, TRAINING_DEFAULTS.patience);
});
