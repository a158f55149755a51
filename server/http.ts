/**
 * HTTP conventions of the Phase API (phase-rest-api.md §3, §8): error bodies, casing, headers, timestamps.
 */
import { randomUUID } from 'node:crypto';
import type { Request } from 'express';
import { z } from 'zod';
import { PhaseBridgeError } from '../core/errors';
import { canonicalSecretPath, SecretPathError } from '../core/secret-path';

/** An error with an HTTP status; the message is sent as `{"error": message}` and names what to fix. */
export class HttpError extends PhaseBridgeError {
  readonly status: number;
  readonly headers: Record<string, string>;

  constructor(status: number, message: string, headers: Record<string, string> = {}) {
    super(`http_${status}`, message);
    this.status = status;
    this.headers = headers;
  }
}

export const badRequest = (m: string): HttpError => new HttpError(400, m);
export const forbidden = (m: string): HttpError => new HttpError(403, m);
export const notFound = (m: string): HttpError => new HttpError(404, m);
export const conflict = (m: string): HttpError => new HttpError(409, m);
export const unauthorized = (m: string): HttpError => new HttpError(401, m, { 'WWW-Authenticate': 'Bearer' });

let lastMicros = 0;

/**
 * Now as Phase formats it: ISO-8601 UTC with microseconds and `Z`. Strictly increasing within a process, so two
 * writes in one millisecond still give different `updated_at` values (clients detect change by inequality).
 */
export function nowIso(): string {
  const micros = Math.max(Date.now() * 1000, lastMicros + 1);
  lastMicros = micros;
  return microsToIso(micros);
}

export function microsToIso(micros: number): string {
  const ms = Math.floor(micros / 1000);
  const base = new Date(ms).toISOString(); // 2024-02-13T13:41:45.551Z
  const sub = String(micros % 1000).padStart(3, '0');
  return `${base.slice(0, 23)}${sub}Z`;
}

/** Inverse of microsToIso for our stored format (`…SS.ffffffZ`). */
export function isoToMicros(iso: string): number {
  const m = /^(.{19})(?:\.(\d{1,6}))?Z$/.exec(iso);
  if (!m) return new Date(iso).getTime() * 1000;
  const frac = (m[2] ?? '').padEnd(6, '0');
  return Date.parse(`${m[1]}Z`) * 1000 + Number(frac);
}

/** Any accepted timestamp to our stored format. */
export function toStoredIso(d: Date): string {
  return microsToIso(d.getTime() * 1000);
}

export const newId = (): string => randomUUID();

/** djangorestframework-camel-case's rule: `_x` after a letter or digit becomes `X`. */
export function camelKey(key: string): string {
  let v = camelCache.get(key);
  if (v === undefined) {
    v = key.replace(/([a-zA-Z0-9])_([a-z0-9])/g, (_m, a: string, b: string) => a + b.toUpperCase());
    // Keys come from our own objects and a few client-chosen names; bound the cache anyway.
    if (camelCache.size < 10_000) camelCache.set(key, v);
  }
  return v;
}
const camelCache = new Map<string, string>();

/** Camelises every dict key at every depth; values are untouched. */
export function camelize(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(camelize);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const k in value as Record<string, unknown>) {
      out[camelKey(k)] = camelize((value as Record<string, unknown>)[k]);
    }
    return out;
  }
  return value;
}

/** Header lookup as Django does it: case-insensitive, `_` ≡ `-`. Returns the first value. */
export function header(req: Request, name: string): string | undefined {
  const want = name.toLowerCase().replace(/_/g, '-');
  const raw = req.rawHeaders;
  for (let i = 0; i < raw.length; i += 2) {
    if (raw[i].toLowerCase().replace(/_/g, '-') === want) return raw[i + 1];
  }
  return undefined;
}

/**
 * A query parameter by snake_case name; camelCase names are accepted too (Phase snake-cases query names).
 * Repeated parameters: the last one wins, like Django's QueryDict.get.
 */
export function query(req: Request, name: string): string | undefined {
  const q = req.query as Record<string, unknown>;
  let v = q[name];
  if (v === undefined) v = q[camelKey(name)];
  if (Array.isArray(v)) v = v[v.length - 1];
  return typeof v === 'string' ? v : undefined;
}

/** Formats the first zod issue as `'<field>': <message>` (or the custom message when the schema gives one). */
export function zodMessage(err: z.ZodError): string {
  const issue = err.issues[0];
  if (!issue) return 'Invalid request.';
  const field = issue.path.join('.');
  if (issue.code === z.ZodIssueCode.custom || issue.message.startsWith('!')) {
    return issue.message.replace(/^!/, '');
  }
  if (issue.code === z.ZodIssueCode.unrecognized_keys) {
    return `Unknown field(s): ${issue.keys.map((k) => `'${k}'`).join(', ')}.`;
  }
  return field ? `'${field}': ${issue.message}` : issue.message;
}

/** Validates with zod; a failure is a 400 naming the field. */
export function parseWith<T>(schema: z.ZodType<T, z.ZodTypeDef, unknown>, input: unknown): T {
  const r = schema.safeParse(input);
  if (!r.success) throw badRequest(zodMessage(r.error));
  return r.data;
}

/** The parsed JSON body (set by the body middleware); `undefined` when the request had none. */
export function body(req: Request): unknown {
  return (req as Request & { jsonBody?: unknown }).jsonBody;
}

/** Body that must be a JSON object (Phase: `Request body must be a JSON object.`). */
export function objectBody(
  req: Request,
  requiredMessage = 'Request body must be a JSON object.',
): Record<string, unknown> {
  const b = body(req);
  if (b === undefined) throw badRequest(requiredMessage);
  if (b === null || typeof b !== 'object' || Array.isArray(b))
    throw badRequest('Request body must be a JSON object.');
  return b as Record<string, unknown>;
}

// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;

/**
 * Phase's text-field validation (§8.4) as a zod schema: null/blank → missing when required (else omitted);
 * non-string → 400; HTML tags and control characters stripped; length checked. Messages are Phase's.
 */
export function zText(label: string, opts: { required: boolean; max: number }) {
  return z.unknown().transform((v, ctx): string | undefined => {
    const fail = (message: string) => {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message });
      return z.NEVER;
    };
    if (v === undefined || v === null || (typeof v === 'string' && v.trim() === '')) {
      return opts.required ? fail(`Missing required field: ${label}`) : undefined;
    }
    if (typeof v !== 'string') return fail(`'${label}' must be a string.`);
    const cleaned = v
      .replace(/<[^>]*>/g, '')
      .replace(CONTROL, '')
      .trim();
    if (cleaned === '') return opts.required ? fail(`Missing required field: ${label}`) : undefined;
    if (cleaned.length > opts.max) return fail(`'${label}' cannot exceed ${opts.max} characters.`);
    return cleaned;
  });
}

/** Validates one text field of a body with `zText`. */
export function textField(
  obj: Record<string, unknown>,
  field: string,
  opts: { required: boolean; max: number; label?: string },
): string | undefined {
  return parseWith(zText(opts.label ?? field, opts), obj[field]);
}

/** Rejects fields outside `allowed` (our extension endpoints are strict). */
export function rejectUnknown(obj: Record<string, unknown>, allowed: string[]): void {
  const unknown = Object.keys(obj).filter((k) => !allowed.includes(k));
  if (unknown.length) throw badRequest(`Unknown field(s): ${unknown.map((k) => `'${k}'`).join(', ')}.`);
}

export function isUuid(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(s);
}

/** The canonical secret path (core/secret-path); a dot segment is a 400 that says why. */
export function normalizePath(p: string | undefined | null): string {
  try {
    return canonicalSecretPath(p);
  } catch (e) {
    if (e instanceof SecretPathError) throw badRequest(e.message);
    throw e;
  }
}
