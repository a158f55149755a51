/**
 * Phase token strings (`pss_user:v1`, `pss_service:v1`, `pss_service:v2`) and the Authorization header
 * (spec: phase-protocol.md §1). Parse errors name the broken segment and never echo the token.
 */
import { TokenFormatError } from './errors';

export type AuthType = 'User' | 'Service' | 'ServiceAccount';
export const AUTH_TYPES: readonly AuthType[] = ['User', 'Service', 'ServiceAccount'];

export interface PssToken {
  prefix: 'pss_user' | 'pss_service';
  /** The `v<N>` number: 1 for PATs and legacy service tokens, 2 for service-account tokens. */
  version: number;
  /** Segment 2: the bearer credential (64 hex). */
  bearer: string;
  /** Segment 3: the account's X25519 public key. */
  publicKey: string;
  /** Segment 4: the client-held XOR share of the private key. */
  keyShare: string;
  /** Segment 5: the key that unwraps the server-held share. */
  wrapKey: string;
  authType: AuthType;
}

const HEX64 = /^[0-9a-fA-F]{64}$/;
const SEGMENTS: Array<[keyof PssToken, 'token' | 'publicKey' | 'keyShare' | 'wrapKey', string]> = [
  ['bearer', 'token', 'segment 3 (bearer token)'],
  ['publicKey', 'publicKey', 'segment 4 (public key)'],
  ['keyShare', 'keyShare', 'segment 5 (key share)'],
  ['wrapKey', 'wrapKey', 'segment 6 (wrap key)'],
];

/** The auth type every official client derives: user → User; service v1 → Service; otherwise ServiceAccount. */
export function authTypeFor(prefix: PssToken['prefix'], version: number): AuthType {
  if (prefix === 'pss_user') return 'User';
  return version === 1 ? 'Service' : 'ServiceAccount';
}

/** Parses a `pss_...` token. Surrounding whitespace (a trailing newline from a file) is ignored. */
export function parsePssToken(input: unknown): PssToken {
  if (typeof input !== 'string') throw new TokenFormatError('shape', 'token must be a string');
  const s = input.trim();
  if (s === '') throw new TokenFormatError('shape', 'token is empty');
  const parts = s.split(':');
  if (parts.length !== 6) {
    throw new TokenFormatError(
      'shape',
      `token must have 6 colon-separated segments (pss_<kind>:v<N>:<token>:<public key>:<key share>:<wrap key>), got ${parts.length}`,
    );
  }
  const [prefix, ver] = parts;
  if (prefix !== 'pss_user' && prefix !== 'pss_service') {
    throw new TokenFormatError('prefix', 'token segment 1 must be pss_user or pss_service');
  }
  const m = /^v(\d{1,6})$/.exec(ver);
  if (!m) throw new TokenFormatError('version', 'token segment 2 must be a version like v1 or v2');
  const version = Number(m[1]);
  const out: Partial<PssToken> = { prefix, version, authType: authTypeFor(prefix, version) };
  SEGMENTS.forEach(([field, part, label], i) => {
    const seg = parts[i + 2];
    if (!HEX64.test(seg)) throw new TokenFormatError(part, `token ${label} must be 64 hex characters`);
    (out as Record<string, unknown>)[field] = seg.toLowerCase();
  });
  return out as PssToken;
}

export function isPssToken(input: unknown): boolean {
  try {
    parsePssToken(input);
    return true;
  } catch {
    return false;
  }
}

/** Formats the six-segment token string. */
export function formatPssToken(t: Omit<PssToken, 'authType'>): string {
  return `${t.prefix}:v${t.version}:${t.bearer}:${t.publicKey}:${t.keyShare}:${t.wrapKey}`;
}

/** A credential a client can send: a full pss token, or a bare "REST API token" (`ServiceAccount <hex>`). */
export interface Credential {
  authType: AuthType;
  bearer: string;
  /** Present when the credential carries key material (full pss token). */
  pss?: PssToken;
}

/** Accepts a pss token or a `<Type> <64 hex>` REST API token (optionally prefixed with `Bearer `). */
export function parseCredential(input: unknown): Credential {
  if (typeof input !== 'string') throw new TokenFormatError('shape', 'token must be a string');
  const s = input.trim();
  if (s.startsWith('pss_')) {
    const pss = parsePssToken(s);
    return { authType: pss.authType, bearer: pss.bearer, pss };
  }
  const words = s.split(/\s+/);
  if (words[0]?.toLowerCase() === 'bearer') words.shift();
  if (words.length === 2 && (AUTH_TYPES as readonly string[]).includes(words[0])) {
    if (!HEX64.test(words[1])) throw new TokenFormatError('token', 'bearer token must be 64 hex characters');
    return { authType: words[0] as AuthType, bearer: words[1].toLowerCase() };
  }
  throw new TokenFormatError(
    'shape',
    'token must be a pss_user:/pss_service: token or a REST API token like "ServiceAccount <64 hex>"',
  );
}

/** `Bearer <Type> <token>` for a credential or token string. */
export function authorizationHeader(token: string | Credential | PssToken): string {
  const c = typeof token === 'string' ? parseCredential(token) : token;
  return `Bearer ${c.authType} ${c.bearer}`;
}

export type ParsedAuthorization =
  | { ok: true; authType: AuthType; token: string }
  | {
      ok: false;
      reason: 'missing' | 'malformed' | 'unknown_type';
      /** What to send instead, when the mistake is recognisable; never contains any part of the token. */
      hint?: string;
    };

const PSS_PREFIX = /^pss_(user|service):v(\d{1,6})(?::|$)/;

/**
 * Server-side parsing: split on single spaces, exactly 3 parts, `bearer` in any case, type case-sensitive.
 * Phase ignores parts after the token; this server refuses them (a header with trailing garbage is a client bug
 * worth hearing about). A whole `pss_...` token where the bearer value belongs is refused with a hint naming the
 * header to send instead.
 */
export function parseAuthorizationHeader(header: string | undefined): ParsedAuthorization {
  if (header === undefined || header === '') return { ok: false, reason: 'missing' };
  const parts = header.split(' ');
  for (const part of parts) {
    const m = PSS_PREFIX.exec(part);
    if (!m) continue;
    const prefix = m[1] === 'user' ? 'pss_user' : 'pss_service';
    const type = authTypeFor(prefix, Number(m[2]));
    return {
      ok: false,
      reason: 'malformed',
      hint:
        `Authorization carries a whole ${prefix}:v${Number(m[2])} token; send only its bearer value, the third ` +
        `colon-separated field (64 hex characters), as "Bearer ${type} <bearer value>".`,
    };
  }
  if (parts.length < 3 || parts[0].toLowerCase() !== 'bearer' || !parts[1] || !parts[2]) {
    return { ok: false, reason: 'malformed' };
  }
  if (!(AUTH_TYPES as readonly string[]).includes(parts[1])) return { ok: false, reason: 'unknown_type' };
  if (parts.length > 3) {
    return {
      ok: false,
      reason: 'malformed',
      hint: 'Authorization must be exactly "Bearer <User|Service|ServiceAccount> <token>", with nothing after the token.',
    };
  }
  return { ok: true, authType: parts[1] as AuthType, token: parts[2] };
}
