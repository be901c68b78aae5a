// ESLint flat config: typescript-eslint's type-aware recommended rules on the TypeScript (src, test, scripts; the
// webview's page in src/webview with its own tsconfig), the recommended JavaScript rules on the plain-JS entry
// points and e2e harness. Formatting is Prettier's job (`npm run format:check`), so no stylistic rules here.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

export default tseslint.config(
  {
    ignores: [
      'dist/**',
      'node_modules/**',
      'models/**',
      'results/**',
      'python/**',
      'test-results/**',
      '.vscode-test/**',
      'scripts/pretrain-embedded/**',
      '**/*.vsix',
    ],
  },
  js.configs.recommended,
  {
    files: ['**/*.ts'],
    extends: [...tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // `_`-prefixed names are deliberately unused (destructuring a key away, a callback's fixed signature).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none', ignoreRestSiblings: true },
      ],
      // Promises the extension fires on purpose are marked with `void`; any other floating promise is a bug.
      '@typescript-eslint/no-floating-promises': ['error', { ignoreVoid: true }],
      // JSON from the CLI, the webview and files is `any` at its boundary and checked there; these rules would
      // flag every such check rather than the unchecked uses they are meant to catch.
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      // Numbers, flags and shapes (arrays print as "2,3,4") are the norm in messages; objects and unknowns are not.
      '@typescript-eslint/restrict-template-expressions': [
        'error',
        { allowNumber: true, allowBoolean: true, allowNullish: true, allowArray: true },
      ],
    },
  },
  {
    // The core's public entry points are the only way in from outside src/engine (docs/ARCHITECTURE.md): the CLI,
    // the lab and the scripts use src/engine/index.ts; the extension host uses src/engine/light.ts (no native code).
    files: ['src/cli/**/*.ts', 'src/lab/**/*.ts', 'scripts/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        { patterns: [{ regex: '/engine/.+', message: "Import the engine from its entry point ('…/engine')." }] },
      ],
    },
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [{ regex: '/engine(/(?!light$).*)?$', message: "The extension host imports the engine from '../engine/light' only." }],
        },
      ],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // node:test's `test(...)` returns a promise the runner awaits; test bodies are async whether they await or not.
      '@typescript-eslint/no-floating-promises': 'off',
      '@typescript-eslint/require-await': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-non-null-assertion': 'off',
    },
  },
  {
    // The panel's page and its tests are outside tsconfig.json (browser code, DOM lib): their own projects.
    files: ['src/webview/**/*.ts'],
    languageOptions: { parserOptions: { projectService: false, project: './tsconfig.webview.json', tsconfigRootDir: import.meta.dirname } },
  },
  {
    files: ['test/extension/webview.test.ts'],
    languageOptions: {
      parserOptions: { projectService: false, project: './tsconfig.webview-test.json', tsconfigRootDir: import.meta.dirname },
    },
  },
  {
    files: ['bin/**/*.js', 'test/extension/fixtures/**/*.js', 'test/e2e/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { ...globals.node, ...globals.mocha } },
  },
  {
    files: ['**/*.mjs'],
    languageOptions: { sourceType: 'module', globals: globals.node },
  },
  {
    files: ['**/*.js', '**/*.mjs'],
    rules: { 'no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }] },
  },
);
