/**
 * The service token the sync engine uses. This class holds a configured token, or reads it from a file: a token file is
 * watched (fs.watch on its directory, which also sees Kubernetes' symlink swaps) with a polling fallback, and re-read
 * on change; a new valid token is used at once (`rotated`: the engine syncs with it right away). A file that does not
 * parse (a rotation caught half-written) is ignored until it does: the previous token stays in use, so nothing drops.
 *
 * The workload-identity logins (`--auth kubernetes|oidc|aws-iam`, agent/auth/login.ts) extend it: they obtain the
 * token themselves and renew it, behind the same interface (`token`, `raw`, `check()`, `rotated`).
 */
import { EventEmitter } from 'node:events';
import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';
import { parsePssToken, type PssToken } from '../core/token';
import { PhaseBridgeError } from '../core/errors';
import { AgentPathError } from './errors';
import type { Logger } from './logger';
import { readTrustedFile, TOKEN_FILE_RULE } from './trust';

export interface TokenSourceEvents {
  rotated: [PssToken];
  /** A login token expired and no login has replaced it (login methods only). */
  expired: [];
}

/** How the agent authenticates: a configured token, a token file, or a workload-identity login. */
export type AuthMethod = 'token' | 'token-file' | 'kubernetes' | 'oidc' | 'aws-iam';

/**
 * `ok`: a token is held; `pending`: no login has finished yet; `refused`: the latest login was refused (HTTP 4xx);
 * `error`: the latest login failed otherwise (network, 5xx, 429, an unreadable JWT file, no AWS credentials).
 */
export type AuthState = 'ok' | 'pending' | 'refused' | 'error';

/** What /v1/status reports under `auth` (no token, no credential). */
export interface AuthStatus {
  method: AuthMethod;
  state: AuthState;
  /** Why the latest login failed, or null. */
  reason: string | null;
  /** Epoch ms when the current token expires server-side (logins); null when the agent does not know (a configured token). */
  expiresAt: number | null;
  /** A token is held and, as far as the agent knows, has not expired. */
  validToken: boolean;
  /** Login methods: the service account, logins so far, the latest success and the next attempt (epoch ms). */
  accountId?: string;
  logins?: number;
  lastLoginAt?: number | null;
  nextLoginAt?: number | null;
  /** Login methods reading a JWT: the file. aws-iam: where the AWS credentials came from. */
  jwtFile?: string;
  credentials?: string | null;
}

/** Why the engine must not call the upstream now (no usable token), and what to answer it instead. */
export interface TokenBlock {
  /** 403: fail closed (the login was refused); 503: a failure to retry (the engine keeps what it serves). */
  status: 403 | 503;
  reason: string;
}

export class TokenSource extends EventEmitter<TokenSourceEvents> {
  protected current: { raw: string; token: PssToken } | undefined;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  /** A change was seen while the file was being read: read it once more (that read may have seen the old file). */
  private readAgain = false;
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: { token?: string; tokenFile?: string; pollIntervalMs: number; log: Logger },
  ) {
    super();
  }

  /** Loads the token once; throws a clear error when it is missing or malformed. */
  async start(): Promise<void> {
    if (this.opts.tokenFile) {
      const file = this.opts.tokenFile;
      const { raw, mode } = await this.readFileToken();
      this.current = { raw, token: parsePssToken(raw) };
      if (mode !== undefined && (mode & 0o004) !== 0)
        this.opts.log.warn(
          { file },
          `the token file is readable by every local user (mode ${(mode & 0o7777).toString(8).padStart(4, '0')}): run chmod 600 ${file} (or 640 to share it with a group)`,
        );
      this.watchFile(file);
    } else if (this.opts.token) {
      this.current = { raw: this.opts.token.trim(), token: parsePssToken(this.opts.token) };
    } else {
      throw new PhaseBridgeError('agent_token', 'no service token configured');
    }
  }

  /** For /v1/status. */
  status(): AuthStatus {
    return {
      method: this.opts.tokenFile ? 'token-file' : 'token',
      state: 'ok',
      reason: null,
      expiresAt: null,
      validToken: !!this.current,
    };
  }

  /** A configured token or token file never blocks the engine: the upstream judges it (and fails closed). */
  blocked(): TokenBlock | undefined {
    return undefined;
  }

  /** Why the scopes fail closed in the token source's words (logins); undefined: the upstream's reason stands. */
  failClosedReason(): string | undefined {
    return undefined;
  }

  get token(): PssToken {
    if (!this.current) throw new PhaseBridgeError('agent_token', 'token source not started');
    return this.current.token;
  }

  /** Raw token string for the API client (kept in memory only). */
  get raw(): string {
    if (!this.current) throw new PhaseBridgeError('agent_token', 'token source not started');
    return this.current.raw;
  }

  /**
   * Reads the token file through the trust rules (agent/trust.ts): owned by the agent's user or root, not writable
   * by others (an AgentPathError otherwise). Returns the token and the file's mode.
   */
  private async readFileToken(): Promise<{ raw: string; mode?: number }> {
    const file = this.opts.tokenFile as string;
    let read: Awaited<ReturnType<typeof readTrustedFile>>;
    try {
      read = await readTrustedFile(file, TOKEN_FILE_RULE);
    } catch (err) {
      if (err instanceof AgentPathError) throw err;
      throw new PhaseBridgeError(
        'agent_token',
        `cannot read token file ${file}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
    if (!read) throw new PhaseBridgeError('agent_token', `cannot read token file ${file}: ENOENT`);
    return { raw: read.text.trim(), mode: read.stats?.mode };
  }

  private watchFile(file: string): void {
    try {
      this.watcher = watch(dirname(file), { persistent: false }, (_event, name) => {
        if (!name || name === basename(file) || name.startsWith('..')) this.schedule();
      });
      this.watcher.on('error', () => {
        this.watcher?.close();
        this.watcher = undefined; // polling keeps working
      });
    } catch {
      this.watcher = undefined;
    }
    this.poll = setInterval(() => this.schedule(), this.opts.pollIntervalMs);
    this.poll.unref();
  }

  private schedule(): void {
    if (this.debounce) return;
    this.debounce = setTimeout(() => {
      this.debounce = undefined;
      void this.check();
    }, 20);
    this.debounce.unref();
  }

  /**
   * Re-reads the file; emits `rotated` when it holds a different, valid token. A call while a read is under way
   * makes that read run once more when it ends, so a change that lands during a read is never missed.
   */
  async check(): Promise<void> {
    if (!this.opts.tokenFile) return;
    if (this.reading) {
      this.readAgain = true;
      return this.reading;
    }
    this.reading = (async () => {
      try {
        do {
          this.readAgain = false;
          await this.readOnce();
        } while (this.readAgain);
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }

  private async readOnce(): Promise<void> {
    try {
      const { raw } = await this.readFileToken();
      if (raw === this.current?.raw) return;
      let token: PssToken;
      try {
        token = parsePssToken(raw);
      } catch (err) {
        this.opts.log.warn(
          { file: this.opts.tokenFile, reason: (err as Error).message },
          'token file does not hold a valid token yet; keeping the previous token',
        );
        return;
      }
      this.current = { raw, token };
      this.opts.log.info({ file: this.opts.tokenFile }, 'token file changed; using the new token');
      this.emit('rotated', token);
    } catch (err) {
      this.opts.log.warn(
        { reason: (err as Error).message },
        'token file unreadable; keeping the previous token',
      );
    }
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }
}
