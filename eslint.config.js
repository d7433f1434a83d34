// The dependency rule, checked in `npm test` (`npm run lint`): the core knows no HTTP server, no
// provider and no configuration; the server knows no provider; one protocol folder never imports
// another (the composition root, src/providers/index.ts and image-backends.ts, wires them).
import tsParser from '@typescript-eslint/parser';

const protocolFolders = ['anthropic', 'gemini', 'gradio', 'huggingface', 'local', 'openai-compatible', 'pollinations'];

/** `no-restricted-imports` patterns for paths relative to a file one or two folders deep. */
const forbid = (names, message) => ({ group: names.flatMap((name) => [`../${name}`, `../${name}/**`, `../../${name}`, `../../${name}/**`]), message });

export default [
  { ignores: ['dist/**', 'node_modules/**', 'tools/**', 'bench/**', 'test/**'] },
  {
    files: ['src/**/*.ts'],
    languageOptions: { parser: tsParser, parserOptions: { sourceType: 'module' } },
  },
  {
    files: ['src/core/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            forbid(
              ['server', 'providers', 'state'],
              'core/ imports neither server/, providers/ nor state/: it owns the operations, the edges own the dialects and the shared state',
            ),
            {
              group: ['../config', '../config.js', '../config-file', '../config-file.js'],
              message: 'core/ does not read the configuration: it is handed settings',
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/server/**/*.ts'],
    rules: {
      'no-restricted-imports': ['error', { patterns: [forbid(['providers'], 'server/ does not import providers/: it reaches them through the registry')] }],
    },
  },
  {
    files: ['src/state/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [forbid(['server', 'providers'], 'state/ implements the shared-state interfaces core/ defines: it imports neither server/ nor providers/')],
        },
      ],
    },
  },
  ...protocolFolders.map((folder) => ({
    files: [`src/providers/${folder}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            forbid(
              protocolFolders.filter((other) => other !== folder),
              `providers/${folder}/ imports no other protocol folder`,
            ),
          ],
        },
      ],
    },
  })),
];
