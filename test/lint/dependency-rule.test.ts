/**
 * The dependency rule is enforced by lint (issue 15): a planted crossing between parts fails `eslint`, which CI runs.
 * eslint runs as a child process on text given through stdin, named as if it were a file in each part.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

const ROOT = resolve(__dirname, '..', '..');

function lint(filename: string, text: string): Promise<{ code: number; out: string }> {
  return new Promise((done) => {
    const child = execFile(
      process.execPath,
      [resolve(ROOT, 'node_modules/eslint/bin/eslint.js'), '--stdin', '--stdin-filename', filename],
      { cwd: ROOT },
      (err, stdout, stderr) =>
        done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, out: stdout + stderr }),
    );
    child.stdin?.end(text);
  });
}

describe('the dependency rule', () => {
  test.each([
    ['server/planted.ts', "import { loadConfig } from '../agent/config';"],
    ['server/routes/planted.ts', "import { providerDef } from '../../provider/provider';"],
    ['agent/planted.ts', "import { createServer } from '../server/app';"],
    ['provider/resources/planted.ts', "import { PhaseApp } from '../../constructs';"],
    ['core/planted.ts', "import { register } from '../agent/cli';"],
    ['constructs/planted.ts', "import { PhaseClient } from '../core/client';"],
  ])(
    '%s importing another part fails lint',
    async (file, line) => {
      const r = await lint(file, `${line}\nexport const x = 1;\nvoid x;\n`);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/may import only core\/|may import only core\/duration/);
    },
    60_000,
  );

  test.each([
    ['bin/planted.ts', "import { QuickstartStack } from '../examples/cdktf/stack';"],
    ['bin/sub/planted.ts', "import type { QuickstartStackProps } from '../../examples/cdktf/stack';"],
  ])(
    '%s (the shipped CLI) importing examples/ fails lint',
    async (file, line) => {
      const r = await lint(file, `${line}\nexport const x = 1;\nvoid x;\n`);
      expect(r.code).toBe(1);
      expect(r.out).toMatch(/bin\/ \(the shipped CLI\) may not import examples\//);
    },
    60_000,
  );

  test.each([
    ['server/planted.ts', "import { parsePssToken as used } from '../core/token';"],
    ['constructs/planted.ts', "import { parseDuration as used } from '../core/duration';"],
    ['constructs/planted.ts', "import { ASYMMETRIC_ALGORITHMS as used } from '../core/identity';"],
    ['constructs/planted.ts', "import { app as used } from './provider';"],
    ['bin/planted.ts', "import { QuickstartStack as used } from './quickstart-stack';"],
    ['bin/planted.ts', "import { createServer as used } from '../server';"],
  ])(
    '%s importing what the rule allows passes',
    async (file, line) => {
      const r = await lint(file, `${line}\nexport const x = used;\n`);
      expect([r.code, r.out]).toEqual([0, '']);
    },
    60_000,
  );
});
