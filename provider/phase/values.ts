/** Small typed accessors for framework values, and validators shared by the Phase resources. */
import { isIP } from 'node:net';
import { DiagnosticsError, error, type Diagnostic } from '../framework/diagnostics';
import type { Validator } from '../framework/schema';
import { isUnknown, type TfObject, type TfValue } from '../framework/types';
import { parseDuration } from '../../core/duration';

export function str(o: TfObject, k: string): string | undefined {
  const v = o[k];
  return typeof v === 'string' ? v : undefined;
}

export function num(o: TfObject, k: string): number | undefined {
  const v = o[k];
  return typeof v === 'number' ? v : undefined;
}

export function bool(o: TfObject, k: string): boolean | undefined {
  const v = o[k];
  return typeof v === 'boolean' ? v : undefined;
}

export function strList(o: TfObject, k: string): string[] | undefined {
  const v = o[k];
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : undefined;
}

/** A string attribute the resource cannot work without (Terraform enforces required; this guards imports). */
export function need(o: TfObject, k: string): string {
  const v = str(o, k);
  if (v === undefined || v === '') throw new Error(`attribute "${k}" is not set`);
  return v;
}

/** Servers answer "" for an unset optional text; keep null when the prior state had null. */
export function textOrNull(server: string | null | undefined, prior: TfValue): string | null {
  if ((server === '' || server === null || server === undefined) && (prior === null || prior === undefined))
    return null;
  return server ?? null;
}

/** Keeps the prior order of a list when the server returns the same elements in another order. */
export function stableList(server: string[], prior: TfValue): string[] {
  if (Array.isArray(prior) && prior.length === server.length) {
    const a = [...prior].map(String).sort();
    const b = [...server].sort();
    if (a.every((x, i) => x === b[i])) return prior as string[];
  }
  return server;
}

export const isSet = (v: TfValue | undefined): boolean => v !== null && v !== undefined;
export const isKnown = (v: TfValue | undefined): boolean => !isUnknown(v);

// ---- validators ----

export const notBlank: Validator = (v, path) =>
  typeof v === 'string' && v.trim() === ''
    ? [error('Invalid value', 'The value must not be empty.', path)]
    : [];

export function maxLength(n: number): Validator {
  return (v, path) =>
    typeof v === 'string' && v.length > n
      ? [error('Value too long', `The value may have at most ${n} characters.`, path)]
      : [];
}

export function oneOf(...allowed: string[]): Validator {
  return (v, path) =>
    typeof v === 'string' && !allowed.includes(v)
      ? [
          error(
            'Invalid value',
            `Expected one of ${allowed.map((a) => `"${a}"`).join(', ')}, got "${v}".`,
            path,
          ),
        ]
      : [];
}

export const positiveInteger: Validator = (v, path) =>
  typeof v === 'number' && !(Number.isInteger(v) && v > 0)
    ? [error('Invalid value', 'The value must be a positive whole number of seconds.', path)]
    : [];

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;
export const rfc3339: Validator = (v, path) =>
  typeof v === 'string' && (!RFC3339.test(v) || Number.isNaN(Date.parse(v)))
    ? [
        error(
          'Invalid timestamp',
          `"${v}" is not an RFC 3339 timestamp with a timezone, such as "2030-01-31T12:00:00Z" (tip: timeadd(timestamp(), "720h")).`,
          path,
        ),
      ]
    : [];

export const duration: Validator = (v, path) =>
  typeof v === 'string' && parseDuration(v) === undefined
    ? [
        error(
          'Invalid duration',
          `"${v}" is not a duration. Use a number and a unit, such as "30d", "720h", "90m" or "45s".`,
          path,
        ),
      ]
    : [];

/** An IPv4/IPv6 address or CIDR range. */
export function isIpOrCidr(s: string): boolean {
  const [addr, prefix, ...rest] = s.trim().split('/');
  if (rest.length > 0) return false;
  const fam = isIP(addr);
  if (fam === 0) return false;
  if (prefix === undefined) return true;
  if (!/^\d{1,3}$/.test(prefix)) return false;
  return Number(prefix) <= (fam === 4 ? 32 : 128);
}

export const ipList: Validator = (v, path) => {
  const out: Diagnostic[] = [];
  if (Array.isArray(v)) {
    for (const x of v) {
      if (typeof x === 'string' && !isIpOrCidr(x)) {
        out.push(
          error(
            'Invalid IP address or range',
            `"${x}" is not an IPv4/IPv6 address or CIDR range (e.g. 10.0.0.0/24).`,
            path,
          ),
        );
      }
    }
  }
  return out;
};

/** Import ids made of `parts` joined by ":"; every part must be non-empty. */
export function splitImportId(id: string, parts: string[], example: string): string[] {
  const segs = id.split(':');
  if (segs.length !== parts.length || segs.some((s) => s.trim() === '')) {
    throw new DiagnosticsError([
      error(
        'Invalid import id',
        `Expected "${parts.map((x) => `<${x}>`).join(':')}" (for example "${example}"), got "${id}".`,
      ),
    ]);
  }
  return segs;
}
