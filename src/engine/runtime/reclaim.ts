/**
 * A full garbage collection on demand, for the moment after an int8 session build: the graph and the int8 copies
 * it carried (81 MB for a roberta-base inference graph, 163 MB for a training one; since runtime/sessionBuild.ts
 * they travel as external data, no longer inside the serialised bytes) are garbage once ONNX Runtime holds its own,
 * but V8 does not see the native memory the session took, so it has no reason to collect them before the training
 * or classification that follows reaches its peak. Measured on roberta-base int8 training (2 threads), when the
 * weights were inside the bytes: 1177 MB resident after both session builds without it, 703 MB with it.
 *
 * Node exposes `gc` only under --expose-gc; the flag set at run time takes effect for a new context, which hands
 * the function out (the documented way to reach V8 flags from JS: `v8.setFlagsFromString`).
 */
import * as v8 from 'node:v8';
import * as vm from 'node:vm';

let collect: (() => void) | undefined;

export function reclaimGarbage(): void {
  if (!collect) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed) collect = exposed;
    else {
      v8.setFlagsFromString('--expose-gc');
      collect = vm.runInNewContext('gc') as () => void;
    }
  }
  collect();
}
