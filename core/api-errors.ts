/**
 * Typed errors of the HTTP client. Messages carry the method, the path (never a query value that could be
 * secret, never the token) and the server's own error text, which is what a user needs to act.
 */
import { PhaseBridgeError } from './errors';

export type ApiErrorKind =
  | 'bad_request'
  | 'unauthorized'
  | 'forbidden'
  | 'not_found'
  | 'method_not_allowed'
  | 'conflict'
  | 'payload_too_large'
  | 'unprocessable'
  | 'rate_limited'
  | 'server'
  | 'other';

export function apiErrorKind(status: number): ApiErrorKind {
  switch (status) {
    case 400:
      return 'bad_request';
    case 401:
      return 'unauthorized';
    case 403:
      return 'forbidden';
    case 404:
      return 'not_found';
    case 405:
      return 'method_not_allowed';
    case 409:
      return 'conflict';
    case 413:
      return 'payload_too_large';
    case 422:
      return 'unprocessable';
    case 429:
      return 'rate_limited';
    default:
      return status >= 500 ? 'server' : 'other';
  }
}

const MAX_DETAIL = 200;

/**
 * The server's error text as the Go SDK reads it: the JSON body's `error`, else `detail`, else the raw body
 * truncated to 200 characters.
 */
export function phaseErrorText(body: string): string {
  try {
    const j = JSON.parse(body) as unknown;
    if (j && typeof j === 'object') {
      const o = j as Record<string, unknown>;
      if (typeof o.error === 'string') return o.error;
      if (typeof o.detail === 'string') return o.detail;
    }
  } catch {
    // not JSON: fall through to the raw text
  }
  const raw = body.trim();
  return raw.length > MAX_DETAIL ? `${raw.slice(0, MAX_DETAIL)}…` : raw;
}

export interface ApiErrorInit {
  status: number;
  phaseError: string;
  method: string;
  path: string;
  /** Milliseconds the server asked us to wait (429/503 `Retry-After`), when given. */
  retryAfterMs?: number;
}

/** The server answered with a non-2xx status. */
export class ApiError extends PhaseBridgeError {
  readonly status: number;
  readonly kind: ApiErrorKind;
  /** The server's error text (`error`, else `detail`, else the raw body, truncated). */
  readonly phaseError: string;
  readonly method: string;
  readonly path: string;
  readonly retryAfterMs?: number;

  constructor(init: ApiErrorInit) {
    const kind = apiErrorKind(init.status);
    const text = init.phaseError ? `: ${init.phaseError}` : '';
    super(`api_${kind}`, `${init.method} ${init.path} failed with HTTP ${init.status}${text}`);
    this.status = init.status;
    this.kind = kind;
    this.phaseError = init.phaseError;
    this.method = init.method;
    this.path = init.path;
    this.retryAfterMs = init.retryAfterMs;
  }
}

/** 401: missing, unknown, expired or revoked token, or a service account outside its scope. */
export class UnauthorizedError extends ApiError {}
/** 403: RBAC, network policy, plan gate; `/secrets/tokens/` answers an expired token with 403 too. */
export class ForbiddenError extends ApiError {}
export class NotFoundError extends ApiError {}
/** 409: duplicate secret, role name, environment name. */
export class ConflictError extends ApiError {}
export class UnprocessableError extends ApiError {}
/** 429 after the retries ran out. */
export class RateLimitError extends ApiError {}

/** Builds the most specific ApiError subclass for a status. */
export function apiError(init: ApiErrorInit): ApiError {
  switch (init.status) {
    case 401:
      return new UnauthorizedError(init);
    case 403:
      return new ForbiddenError(init);
    case 404:
      return new NotFoundError(init);
    case 409:
      return new ConflictError(init);
    case 422:
      return new UnprocessableError(init);
    case 429:
      return new RateLimitError(init);
    default:
      return new ApiError(init);
  }
}

export type NetworkErrorKind = 'dns' | 'connection' | 'timeout' | 'tls' | 'unknown';

/** No HTTP answer: DNS failure, refused or reset connection, timeout, TLS failure. */
export class NetworkError extends PhaseBridgeError {
  readonly kind: NetworkErrorKind;
  readonly method: string;
  readonly path: string;
  /** True when the failure happened before any byte of the request could reach the server. */
  readonly beforeSend: boolean;

  constructor(
    init: { kind: NetworkErrorKind; method: string; path: string; beforeSend: boolean; detail: string },
    options?: { cause?: unknown },
  ) {
    super(
      `network_${init.kind}`,
      `${init.method} ${init.path} failed (${init.kind}): ${init.detail}`,
      options,
    );
    this.kind = init.kind;
    this.method = init.method;
    this.path = init.path;
    this.beforeSend = init.beforeSend;
  }
}

/** The server answered 2xx but the body is not what Phase returns (wrong shape or not JSON). */
export class ResponseValidationError extends PhaseBridgeError {
  readonly method: string;
  readonly path: string;
  readonly status: number;
  /** Field paths and problems, never values (a body can hold secrets). */
  readonly issues: string[];

  constructor(init: { method: string; path: string; status: number; issues: string[] }) {
    super(
      'response_validation',
      `${init.method} ${init.path} returned an unexpected response body: ${init.issues.slice(0, 5).join('; ')}`,
    );
    this.method = init.method;
    this.path = init.path;
    this.status = init.status;
    this.issues = init.issues;
  }
}

/** A request body the client checks before sending is invalid (nothing was sent). */
export class RequestValidationError extends PhaseBridgeError {
  /** Field paths and problems, never values. */
  readonly issues: string[];

  constructor(what: string, issues: string[]) {
    super('request_validation', `invalid ${what}: ${issues.slice(0, 5).join('; ')}`);
    this.issues = issues;
  }
}

/** Invalid client configuration (host URL, options). */
export class ClientConfigError extends PhaseBridgeError {
  constructor(message: string) {
    super('client_config', message);
  }
}
