/**
 * The service token, from configuration or from a file. A token file is watched (fs.watch on its directory, which
 * also sees Kubernetes' symlink swaps) with a polling fallback, and re-read on change. A file that does not parse
 * (a rotation caught half-written) is ignored until it does: the previous token stays in use, so nothing drops.
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
}

export class TokenSource extends EventEmitter<TokenSourceEvents> {
  private current: { raw: string; token: PssToken } | undefined;
  private watcher: FSWatcher | undefined;
  private poll: NodeJS.Timeout | undefined;
  private reading: Promise<void> | undefined;
  private debounce: NodeJS.Timeout | undefined;

  constructor(
    private readonly opts: { token?: string; tokenFile?: string; pollIntervalMs: number; log: Logger },
  ) {
    super();
  }

  /** Loads the token once; throws a clear error when it is missing or malformed. */
  async start(): Promise<PssToken> {
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
    return this.current.token;
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

  /** Re-reads the file; emits `rotated` when it holds a different, valid token. */
  async check(): Promise<void> {
    if (!this.opts.tokenFile) return;
    if (this.reading) return this.reading;
    this.reading = (async () => {
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
      } finally {
        this.reading = undefined;
      }
    })();
    return this.reading;
  }

  stop(): void {
    this.watcher?.close();
    if (this.poll) clearInterval(this.poll);
    if (this.debounce) clearTimeout(this.debounce);
  }
}
