/**
 * What every benchmark returns, and how a table of results is printed (by `npm run bench` and by each part run on
 * its own as `node dist/bench/<part>/index.js`).
 */

export interface BenchResult {
  name: string;
  value: number;
  unit: string;
  note?: string;
}

/** One result as a table row: name padded to `width`, the value right-aligned, then the unit and the note. */
export function formatResult(r: BenchResult, width = 64): string {
  return `${r.name.padEnd(width)} ${String(r.value).padStart(10)} ${r.unit}${r.note ? `  (${r.note})` : ''}`;
}

/** Runs one part's benchmark from the command line: prints its table, or the failure (exit code 1). */
export function runStandalone(label: string, run: () => Promise<BenchResult[]>, width?: number): void {
  run().then(
    (results) => {
      for (const r of results) process.stdout.write(`${formatResult(r, width)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(
        `${label} benchmark failed: ${err instanceof Error ? err.message : String(err)}\n`,
      );
      process.exitCode = 1;
    },
  );
}
