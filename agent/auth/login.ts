/**
 * Workload-identity logins (`--auth kubernetes | oidc | aws-iam`, docs/identity.md "Agent and run"): the agent
 * exchanges what its platform gives it for a short-lived service-account token, and renews it.
 *
 * - kubernetes / oidc: `POST {api}/identities/external/v1/oidc/auth/` with the JWT read from a file, again at each
 *   login (the kubelet rotates projected tokens; a CI job may rewrite its file). The file passes the agent's trust
 *   rules like a token file (agent/trust.ts).
 * - aws-iam: `POST {api}/identities/external/v1/aws/iam/auth/` with a SigV4-signed STS GetCallerIdentity request
 *   (agent/auth/aws-iam.ts, imported only for this method).
 *
 * Renewal: a new login at two thirds of the token's TTL (minus up to 10 % at random), each one re-reading the JWT or the
 * AWS credentials. A failed login is retried with exponential backoff (1 s doubling to 60 s, jittered) and, while the
 * current token is valid, often enough to land before it expires. A new token is announced as `rotated` (the engine
 * syncs with it at once). When the token expires without a replacement, `expired` is emitted; while the latest login
 * was refused (HTTP 4xx) and no valid token remains, `blocked()` tells the engine to call nothing and fail closed.
 *
 * Nothing of a login is written to disk: after a restart the agent simply logs in again.
 */
import { phaseErrorText } from '../../core/api-errors';
import { resolveBaseUrls } from '../../core/client';
import { PhaseBridgeError } from '../../core/errors';
import { nodeTransport, type HttpResponse, type Transport } from '../../core/http';
import { parseRetryAfter } from '../../core/retry';
import { parsePssToken, type PssToken } from '../../core/token';
import { VERSION } from '../../core/version';
import { AgentLoginError, AgentPathError } from '../errors';
import type { Logger } from '../logger';
import { TokenSource, type AuthState, type AuthStatus, type TokenBlock } from '../token-source';
import { readTrustedFile, type TrustRule } from '../trust';

export type LoginMethod = 'kubernetes' | 'oidc' | 'aws-iam';

/** The JWT file (a Kubernetes projected token, a CI OIDC token): the token file's rule. */
export const JWT_FILE_RULE: TrustRule = {
  what: 'JWT file',
  kind: 'file',
  foreign: () => "use a JWT file owned by the agent's user or root (a Kubernetes projected token is)",
  loose: (p) => `run chmod go-w ${p} (600, or 640 to share it with a group)`,
};

export interface LoginOptions {
  method: LoginMethod;
  /** The Phase host (the login goes to its API base, like Phase's SDKs). */
  host: string;
  /** The service account to log in as. */
  accountId: string;
  /** kubernetes / oidc: the JWT file. */
  jwtFile?: string;
  /** Requested TTL in seconds; omitted = the identity's default. */
  ttlSeconds?: number;
  /** aws-iam: sign for this STS endpoint instead of the region's. */
  stsEndpoint?: string;
  /** Timeout of one login request. */
  timeoutMs: number;
  log: Logger;
  /** Where AWS credentials and the region come from (default process.env). */
  env?: NodeJS.ProcessEnv;
  transport?: Transport;
  /** Fraction taken off the renewal point at random (default 0.1). */
  jitter?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

const HEX0 = '0'.repeat(64);
/** Stands in until the first login succeeds, so the engine can be built; `blocked()` keeps it from being sent. */
const PLACEHOLDER_RAW = `pss_service:v2:${HEX0}:${HEX0}:${HEX0}:${HEX0}`;
const PLACEHOLDER = parsePssToken(PLACEHOLDER_RAW);
const JWT_RE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

interface AwsSigner {
  request(): Promise<{ awsIam: unknown; source: string }>;
}

const iso = (t: number): string => new Date(t).toISOString();

export class LoginTokenSource extends TokenSource {
  private state: AuthState = 'pending';
  private reason: string | null = null;
  private expiresAt = 0;
  private logins = 0;
  private failures = 0;
  private lastLoginAt = 0;
  private lastAttemptAt = 0;
  private nextAt = 0;
  private credentials: string | null = null;
  private timer: NodeJS.Timeout | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private inflight: Promise<boolean> | undefined;
  private started = false;
  private stopped = false;
  private signer: AwsSigner | undefined;
  private readonly transport: Transport;
  private readonly url: string;
  private readonly path: string;
  private readonly minBackoff: number;
  private readonly maxBackoff: number;

  constructor(private readonly o: LoginOptions) {
    super({ pollIntervalMs: 0, log: o.log });
    this.transport = o.transport ?? nodeTransport({ rejectUnauthorized: true });
    this.url = `${resolveBaseUrls(o.host).api}/identities/external/v1/${o.method === 'aws-iam' ? 'aws/iam' : 'oidc'}/auth/`;
    this.path = new URL(this.url).pathname;
    this.minBackoff = o.minBackoffMs ?? 1000;
    this.maxBackoff = o.maxBackoffMs ?? 60_000;
  }

  /**
   * Checks what the method needs (the JWT file exists and passes the trust rules: an AgentPathError otherwise, as for
   * a token file), then logs in once. A refused or failed login does not throw: the agent starts, reports why in
   * /v1/status, serves nothing, and keeps trying.
   */
  override async start(): Promise<void> {
    if (this.o.method === 'aws-iam') {
      const { AwsIamSigner } = await import('./aws-iam');
      this.signer = new AwsIamSigner({ env: this.o.env ?? process.env, stsEndpoint: this.o.stsEndpoint });
    } else {
      try {
        await this.readJwt();
      } catch (err) {
        if (err instanceof AgentPathError) throw err;
        if (err instanceof AgentLoginError) throw new PhaseBridgeError('agent_token', err.message);
        throw err;
      }
    }
    await this.login('start');
    this.started = true;
  }

  override get token(): PssToken {
    return this.current?.token ?? PLACEHOLDER;
  }

  override get raw(): string {
    return this.current?.raw ?? PLACEHOLDER_RAW;
  }

  /** True while a token is held that has not expired. */
  validToken(now = Date.now()): boolean {
    return !!this.current && now < this.expiresAt;
  }

  override status(): AuthStatus {
    return {
      method: this.o.method,
      state: this.state,
      reason: this.reason,
      expiresAt: this.current ? this.expiresAt : null,
      validToken: this.validToken(),
      accountId: this.o.accountId,
      logins: this.logins,
      lastLoginAt: this.lastLoginAt || null,
      nextLoginAt: this.stopped || !this.nextAt ? null : this.nextAt,
      ...(this.o.method === 'aws-iam' ? { credentials: this.credentials } : { jwtFile: this.o.jwtFile }),
    };
  }

  /**
   * Why no token can be used now: none was ever obtained (403 when the login was refused, 503 while it fails
   * otherwise), or the latest login was refused and the token has expired (403). Undefined when a token may be used.
   */
  override blocked(now = Date.now()): TokenBlock | undefined {
    if (!this.current)
      return {
        status: this.state === 'refused' ? 403 : 503,
        reason: this.failClosedReason() ?? 'not logged in yet',
      };
    if (this.state === 'refused' && now >= this.expiresAt)
      return { status: 403, reason: this.failClosedReason() as string };
    return undefined;
  }

  /** The reason the scopes fail closed (no valid token, and logging in fails), or undefined while a token is valid. */
  override failClosedReason(now = Date.now()): string | undefined {
    if (this.validToken(now) || this.state === 'ok' || this.state === 'pending') return undefined;
    const what = this.state === 'refused' ? 'was refused' : 'failed';
    const tail = this.current
      ? `; the last token expired at ${iso(this.expiresAt)}`
      : '; no token was ever obtained';
    return `the ${this.o.method} login ${what} (${this.reason})${tail}`;
  }

  /**
   * The upstream rejected the token in use (the engine asks before it fails closed): revoked, or expired earlier than
   * its TTL said. Logs in again now, unless an attempt is under way (its outcome is awaited) or the backoff of
   * failing logins is in charge.
   */
  override async check(): Promise<void> {
    if (this.stopped) return;
    if (this.inflight) {
      await this.inflight;
      return;
    }
    if (this.state !== 'ok' || Date.now() - this.lastAttemptAt < this.minBackoff) return;
    await this.login('token rejected upstream');
  }

  override stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    super.stop();
  }

  /** One login at a time; concurrent callers share it. Resolves true when it brought a token. */
  private login(why: string): Promise<boolean> {
    this.inflight ??= this.attempt(why).finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async attempt(why: string): Promise<boolean> {
    if (this.stopped) return false;
    if (this.timer) clearTimeout(this.timer);
    this.nextAt = 0;
    const started = Date.now();
    this.lastAttemptAt = started;
    try {
      const body = await this.body();
      const res = await this.send(body);
      const { raw, token, ttl } = this.parse(res);
      this.accept(raw, token, ttl, started, why);
      return true;
    } catch (err) {
      this.fail(err, why);
      return false;
    }
  }

  /** Reads the JWT through the trust rules; a file without a JWT is a failed login (not a refusal). */
  private async readJwt(): Promise<string> {
    const file = this.o.jwtFile as string;
    let read: Awaited<ReturnType<typeof readTrustedFile>>;
    try {
      read = await readTrustedFile(file, JWT_FILE_RULE);
    } catch (err) {
      if (err instanceof AgentPathError) throw err;
      throw new AgentLoginError(
        `cannot read the JWT file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
        {
          refused: false,
        },
      );
    }
    if (!read) throw new AgentLoginError(`cannot read the JWT file ${file}: ENOENT`, { refused: false });
    const jwt = read.text.trim();
    if (!JWT_RE.test(jwt))
      throw new AgentLoginError(`the JWT file ${file} does not hold a JWT`, { refused: false });
    return jwt;
  }

  private async body(): Promise<Record<string, unknown>> {
    const account = { type: 'service', id: this.o.accountId };
    const tokenRequest = this.o.ttlSeconds ? { tokenRequest: { ttl: this.o.ttlSeconds } } : {};
    if (this.o.method === 'aws-iam') {
      let r;
      try {
        r = await (this.signer as AwsSigner).request();
      } catch (err) {
        throw new AgentLoginError(`AWS credentials: ${(err as Error).message}`, { refused: false });
      }
      this.credentials = r.source;
      return { account, awsIam: r.awsIam, ...tokenRequest };
    }
    let jwt: string;
    try {
      jwt = await this.readJwt();
    } catch (err) {
      if (err instanceof AgentPathError) throw new AgentLoginError(err.message, { refused: false });
      throw err;
    }
    return { account, oidc: { jwt: Buffer.from(jwt, 'utf8').toString('base64') }, ...tokenRequest };
  }

  private async send(body: Record<string, unknown>): Promise<HttpResponse> {
    try {
      return await this.transport(
        {
          method: 'POST',
          url: this.url,
          path: this.path,
          headers: {
            'Content-Type': 'application/json',
            Accept: 'application/json',
            'User-Agent': `phase-bridge-agent/${VERSION}`,
          },
          body: JSON.stringify(body),
        },
        this.o.timeoutMs,
      );
    } catch (err) {
      throw new AgentLoginError((err as Error).message, { refused: false });
    }
  }

  private parse(res: HttpResponse): { raw: string; token: PssToken; ttl: number } {
    if (res.status !== 200) {
      const text = phaseErrorText(res.text);
      const refused = res.status >= 400 && res.status < 500 && res.status !== 429 && res.status !== 408;
      throw new AgentLoginError(`HTTP ${res.status} from POST ${this.path}${text ? `: ${text}` : ''}`, {
        refused,
        status: res.status,
        retryAfterMs: res.status === 429 ? parseRetryAfter(res.header('retry-after')) : undefined,
      });
    }
    let auth: { token?: unknown; TTL?: unknown } | undefined;
    try {
      auth = (JSON.parse(res.text) as { authentication?: { token?: unknown; TTL?: unknown } }).authentication;
    } catch {
      auth = undefined;
    }
    const ttl = typeof auth?.TTL === 'number' ? auth.TTL : Number.NaN;
    let token: PssToken;
    try {
      token = parsePssToken(auth?.token);
    } catch {
      throw new AgentLoginError(`POST ${this.path} answered 200 without a valid token`, { refused: false });
    }
    if (!(ttl > 0))
      throw new AgentLoginError(`POST ${this.path} answered 200 without a TTL`, { refused: false });
    return { raw: (auth?.token as string).trim(), token, ttl };
  }

  private accept(raw: string, token: PssToken, ttl: number, started: number, why: string): void {
    const first = !this.current;
    this.current = { raw, token };
    // Counted from when the login was sent: the server's clock started the TTL no earlier.
    this.expiresAt = started + ttl * 1000;
    this.logins++;
    this.failures = 0;
    this.lastLoginAt = Date.now();
    const recovered = this.state !== 'ok' && this.state !== 'pending';
    this.state = 'ok';
    this.reason = null;
    const jitter = this.o.jitter ?? 0.1;
    const renewIn = ttl * 1000 * (2 / 3) * (1 - jitter * Math.random());
    this.arm(renewIn, 'renew');
    if (this.expiryTimer) clearTimeout(this.expiryTimer);
    this.expiryTimer = setTimeout(() => this.onExpired(), Math.max(0, this.expiresAt - Date.now()));
    this.expiryTimer.unref();
    this.o.log.info(
      {
        method: this.o.method,
        accountId: this.o.accountId,
        ttl,
        expiresAt: iso(this.expiresAt),
        renewAt: iso(this.nextAt),
        why,
        ...(this.credentials ? { credentials: this.credentials } : {}),
      },
      first ? 'logged in' : recovered ? 'logged in again after failures' : 'token renewed',
    );
    // The engine is built after start(): the token of the first login is the one it starts with.
    if (this.started) this.emit('rotated', token);
  }

  private fail(err: unknown, why: string): void {
    const e =
      err instanceof AgentLoginError ? err : new AgentLoginError((err as Error).message, { refused: false });
    this.failures++;
    this.state = e.refused ? 'refused' : 'error';
    this.reason = e.message;
    const now = Date.now();
    const valid = this.validToken(now);
    let delay = Math.min(this.maxBackoff, this.minBackoff * 2 ** Math.min(this.failures - 1, 16));
    delay *= 0.8 + 0.4 * Math.random();
    if (e.retryAfterMs !== undefined) delay = Math.max(delay, e.retryAfterMs);
    // While the token is valid, try again before it expires.
    if (valid) delay = Math.min(delay, Math.max(250, (this.expiresAt - now) / 2));
    this.arm(delay, 'retry');
    const fields = {
      method: this.o.method,
      accountId: this.o.accountId,
      reason: e.message,
      why,
      validToken: valid,
      expiresAt: this.current ? iso(this.expiresAt) : null,
      retryAt: iso(this.nextAt),
    };
    if (valid)
      this.o.log.warn(
        fields,
        e.refused
          ? 'login refused; the current token stays in use'
          : 'login failed; the current token stays in use',
      );
    else
      this.o.log.error(fields, e.refused ? 'login refused; no valid token' : 'login failed; no valid token');
  }

  private arm(ms: number, why: string): void {
    if (this.stopped) return;
    if (this.timer) clearTimeout(this.timer);
    const wait = Math.max(10, Math.round(ms));
    this.nextAt = Date.now() + wait;
    this.timer = setTimeout(() => void this.login(why), wait);
    this.timer.unref();
  }

  private onExpired(): void {
    if (this.stopped) return;
    if (this.validToken()) {
      // A timer may fire a millisecond before Date.now() reaches the expiry: look again then, rather than let the
      // expired token go unnoticed until the next refresh. (A renewal that landed meanwhile re-armed this timer.)
      const left = this.expiresAt - Date.now();
      if (left <= 50) {
        this.expiryTimer = setTimeout(() => this.onExpired(), left + 5);
        this.expiryTimer.unref();
      }
      return;
    }
    this.o.log.error(
      {
        method: this.o.method,
        accountId: this.o.accountId,
        reason: this.reason,
        expiresAt: iso(this.expiresAt),
      },
      'the login token expired and no login has replaced it',
    );
    this.emit('expired');
  }
}
