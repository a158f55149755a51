import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'coverage/**', '**/cdktf.out/**', '.tmp/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: {
        require: 'readonly',
        module: 'writable',
        process: 'readonly',
        __dirname: 'readonly',
        console: 'readonly',
      },
    },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-require-imports': 'off',
    },
  },
  // The dependency rule: each part imports core only, core imports no part, and the constructs (shipped into users'
  // CDKTF projects) import nothing of ours but core's dependency-free duration parser. The CLI (bin/) wires the parts
  // together but ships without the examples, which are for users to copy. A crossing fails lint.
  ...Object.entries({
    core: ['server', 'provider', 'constructs', 'agent', 'bin', 'examples'],
    server: ['provider', 'constructs', 'agent', 'bin', 'examples'],
    provider: ['server', 'constructs', 'agent', 'bin', 'examples'],
    agent: ['server', 'provider', 'constructs', 'bin', 'examples'],
    constructs: ['server', 'provider', 'agent', 'bin', 'examples'],
    bin: ['examples'],
  }).map(([part, forbidden]) => ({
    files: [`${part}/**/*.ts`],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            ...forbidden.map((other) => ({
              regex: `^(\\.\\./)+${other}(/|$)`,
              message:
                part === 'bin'
                  ? `bin/ (the shipped CLI) may not import ${other}/, which users copy and the package does not need ` +
                    "(the quickstart's stack is bin/quickstart-stack.ts): see docs/architecture.md"
                  : `${part}/ may import only core/ (and its own modules), not ${other}/: see docs/architecture.md`,
            })),
            ...(part === 'constructs'
              ? [
                  {
                    regex: '^(\\.\\./)+core/(?!(duration|identity)$)',
                    message:
                      "constructs/ ship into users' projects: of core/ they may import only core/duration and core/identity (no dependencies)",
                  },
                ]
              : []),
          ],
        },
      ],
    },
  })),
  {
    // Tests read arbitrary JSON from real HTTP responses; `any` there is a deliberate choice, not an accident.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: { '@typescript-eslint/no-explicit-any': 'off' },
  },
);
