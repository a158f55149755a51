/**
 * `npm run bench`: runs every part's benchmark (bench/<part>/index.ts exports `run()`) and prints one table.
 * `npm run bench -- server agent` runs a subset. Figures and the commands behind them live in docs/performance.md.
 */
import { join } from 'node:path';
import { formatResult, type BenchResult } from './report';

const PARTS = ['server', 'agent', 'provider', 'read'] as const;

async function main(): Promise<void> {
  const wanted = process.argv.slice(2).filter((a) => !a.startsWith('-'));
  const parts = wanted.length ? PARTS.filter((p) => wanted.includes(p)) : [...PARTS];
  let failed = false;
  for (const part of parts) {
    process.stdout.write(`\n## ${part}\n`);
    try {
      const mod = require(join(__dirname, part)) as { run: () => Promise<BenchResult[]> };
      const results = await mod.run();
      for (const r of results) process.stdout.write(`${formatResult(r, 60)}\n`);
    } catch (err) {
      failed = true;
      process.stdout.write(`benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  }
  process.exitCode = failed ? 1 : 0;
}

if (require.main === module) void main();
