/**
 * Bottleneck adapters, the paper's baselines, placed as AdapterHub places them:
 *
 * - Pfeiffer (one adapter per layer, after the feed-forward block, ReLU): with t = LN(h + residual),
 *   out = LN(t + up(relu(down(t))) + residual) — AdapterHub's `original_ln_before` and `original_ln_after`, the
 *   block's own LayerNorm applied twice.
 * - Houlsby (two per layer, after the attention and the feed-forward sub-layers, swish):
 *   out = LN(h + up(swish(down(h))) + residual).
 *
 * Bottleneck = hidden / reduction factor (12 → 64 for d = 768, the paper's setting). Weights N(0, 0.02), zero
 * biases (AdapterHub's "bert" initialisation).
 */
import { ModelBuilder, MethodHooks } from '../models/robertaGraph';
import { RobertaConfig } from '../types';

export type AdapterKind = 'pfeiffer' | 'houlsby';
export const ADAPTER_REDUCTION = 12;

export function bottleneckSize(config: RobertaConfig, reduction = ADAPTER_REDUCTION): number {
  return Math.max(1, Math.round(config.hiddenSize / reduction));
}

/** `<block>` is `attention.output` or `output` (the feed-forward block), as the LayerNorm they sit next to. */
export function adapterPrefix(layer: number, block: 'attention.output' | 'output'): string {
  return `roberta.encoder.layer.${layer}.${block}.adapter`;
}

export function adapterShapes(kind: AdapterKind, config: RobertaConfig): Map<string, number[]> {
  const d = config.hiddenSize,
    r = bottleneckSize(config);
  const shapes = new Map<string, number[]>();
  const blocks: ('attention.output' | 'output')[] = kind === 'houlsby' ? ['attention.output', 'output'] : ['output'];
  for (let i = 0; i < config.numLayers; i++) {
    for (const block of blocks) {
      const p = adapterPrefix(i, block);
      shapes.set(`${p}.down.weight`, [r, d]);
      shapes.set(`${p}.down.bias`, [r]);
      shapes.set(`${p}.up.weight`, [d, r]);
      shapes.set(`${p}.up.bias`, [d]);
    }
  }
  return shapes;
}

/** x + up(act(down(x))) */
function adapter(b: ModelBuilder, x: string, prefix: string, act: 'relu' | 'swish'): string {
  const { g } = b;
  const down = b.linear(x, `${prefix}.down`);
  const a = act === 'relu' ? g.relu(down, 'adapter_relu') : g.mul(down, g.sigmoid(down, 'adapter_sigmoid'));
  return g.add(x, b.linear(a, `${prefix}.up`), 'adapter_out');
}

export function adapterHooks(kind: AdapterKind): MethodHooks {
  if (kind === 'pfeiffer') {
    return {
      ffnBlock(b, layer, h, residual, ln) {
        const t = b.layerNorm(b.g.add(h, residual), ln);
        return b.layerNorm(b.g.add(adapter(b, t, adapterPrefix(layer, 'output'), 'relu'), residual), ln);
      },
    };
  }
  return {
    attentionBlock(b, layer, h, residual, ln) {
      return b.layerNorm(b.g.add(adapter(b, h, adapterPrefix(layer, 'attention.output'), 'swish'), residual), ln);
    },
    ffnBlock(b, layer, h, residual, ln) {
      return b.layerNorm(b.g.add(adapter(b, h, adapterPrefix(layer, 'output'), 'swish'), residual), ln);
    },
  };
}
