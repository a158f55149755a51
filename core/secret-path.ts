/**
 * Secret paths in their one canonical form, for every part: a leading `/`, no `//`, no trailing `/` (the root is
 * `/`). A `.` or `..` segment, plain or percent-encoded (also double-encoded), or an encoded `/` or `\`, is refused
 * rather than resolved: path restrictions compare canonical strings, so no path may name another one.
 */
import { PhaseBridgeError } from './errors';

export class SecretPathError extends PhaseBridgeError {
  constructor(path: string) {
    super(
      'secret_path',
      `Invalid secret path '${path.slice(0, 200)}': '.' and '..' segments (plain or percent-encoded) and encoded separators are not allowed; send the canonical path.`,
    );
  }
}

/** Percent-decoding until stable, so `%252e%252e` cannot become `..` in a client or proxy that decodes once more. */
function decoded(segment: string): string {
  let s = segment;
  for (let i = 0; i < 4; i++) {
    let next: string;
    try {
      next = decodeURIComponent(s);
    } catch {
      break; // not percent-encoding: taken literally
    }
    if (next === s) break;
    s = next;
  }
  return s;
}

/** The canonical form of `p` (empty or missing = `/`); throws SecretPathError on dot segments. */
export function canonicalSecretPath(p: string | undefined | null): string {
  if (p === undefined || p === null || p === '') return '/';
  let s = p.replace(/\/+/g, '/');
  if (!s.startsWith('/')) s = `/${s}`;
  if (s.length > 1) s = s.replace(/\/+$/, '');
  for (const segment of s.split('/')) {
    const d = decoded(segment);
    if (d === '.' || d === '..' || (d !== segment && /[/\\]/.test(d))) throw new SecretPathError(p);
  }
  return s === '' ? '/' : s;
}
