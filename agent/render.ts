/**
 * `--render FILE --format F`: keeps a file in sync with the secrets. Each write goes to a temporary file created
 * with mode 0600 and is renamed over the target, so readers see the old or the new content, never a torn one,
 * and the file is never readable by others, not even for a moment. When the token is revoked (the scope fails
 * closed), the file is removed.
 */
import { rm } from 'node:fs/promises';
import type { AgentConfig } from './config';
import type { Logger } from './logger';
import { atomicWrite } from './snapshot';
import type { SyncEngine } from './sync';

export class Renderer {
  private writing: Promise<void> = Promise.resolve();
  writes = 0;

  constructor(
    private readonly engine: SyncEngine,
    private readonly opts: NonNullable<AgentConfig['render']>,
    private readonly log: Logger,
  ) {
    engine.on('change', (e) => {
      if (opts.scope && e.scope !== opts.scope) return;
      if (e.kind === 'updated') this.write();
      else this.remove(e.reason ?? 'scope unavailable');
    });
  }

  /** Queues a write of the current view (writes never overlap). */
  write(): Promise<void> {
    this.writing = this.writing.then(() => this.writeNow());
    return this.writing;
  }

  /** Fail closed: when the rendered secrets stop being servable (token revoked), the file goes too. */
  remove(reason: string): Promise<void> {
    this.writing = this.writing.then(async () => {
      try {
        await rm(this.opts.file, { force: true });
        this.log.warn(
          { file: this.opts.file, reason },
          'removed the rendered file: its secrets are no longer served',
        );
      } catch (err) {
        this.log.error(
          { file: this.opts.file, err: (err as Error).message },
          'could not remove the rendered file',
        );
      }
    });
    return this.writing;
  }

  /** Resolves when every queued write has finished. */
  flush(): Promise<void> {
    return this.writing;
  }

  private async writeNow(): Promise<void> {
    const { file, format, scope } = this.opts;
    const view = scope ? this.engine.scope(scope)?.view : this.engine.mergedView();
    if (!view) return;
    const b = view.env(format);
    if (b.status !== 200) {
      this.log.error(
        { file, format, reason: JSON.parse(b.body.toString()).error },
        'cannot render the file in this format',
      );
      return;
    }
    try {
      await atomicWrite(file, b.body, 0o600);
      this.writes++;
      this.log.info({ file, format, secrets: view.count }, 'rendered secrets file');
    } catch (err) {
      this.log.error({ file, err: (err as Error).message }, 'could not write the rendered file');
    }
  }
}
