/** Durations as Terraform and Go write them ("720h", "1h30m", "45s", "250ms") plus days ("30d"). */

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/g;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Milliseconds, or undefined when `s` is not a positive duration in that form. */
export function parseDuration(s: string): number | undefined {
  const t = s.trim();
  if (!/^((\d+(\.\d+)?)(ms|s|m|h|d))+$/.test(t)) return undefined;
  let ms = 0;
  for (const m of t.matchAll(DURATION_PART)) ms += Number(m[1]) * UNIT_MS[m[2]];
  return ms > 0 ? ms : undefined;
}
