// Bundles the CLI and the extension into dist/ (onnxruntime-node stays external: it ships native binaries that
// must be loaded from node_modules at run time; vscode is provided by the host), and the benchmark panel's page
// (src/webview/) into dist/webview/panel.js, the one script the panel's HTML loads (src/extension/benchmarkPanel.ts).
import * as esbuild from 'esbuild';

const production = process.argv.includes('--production');
const common = {
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  sourcemap: !production,
  minify: production,
  external: ['vscode', 'onnxruntime-node'],
  logLevel: 'warning',
};

await Promise.all([
  esbuild.build({ ...common, entryPoints: ['src/cli/main.ts'], outfile: 'dist/cli.js' }),
  esbuild.build({ ...common, entryPoints: ['src/extension/extension.ts'], outfile: 'dist/extension.js' }),
  // bin/spartan.js re-runs the CLI with the glibc tunables through this, before loading the CLI (one definition).
  esbuild.build({ ...common, entryPoints: ['src/engine/runtime/childProcess.ts'], outfile: 'dist/childProcess.js' }),
  esbuild.build({
    ...common,
    platform: 'browser',
    target: 'es2022',
    format: 'iife',
    external: [],
    entryPoints: ['src/webview/main.ts'],
    outfile: 'dist/webview/panel.js',
  }),
]);
