/**
 * Templates (`--template SRC:DEST[:MODE]`, `templates` in the config file): render any file from the secrets, as
 * Vault Agent and consul-template users do. Handlebars in strict mode (a missing key is an error, never an empty
 * string) without HTML escaping, with helpers for the export formats (through core/export, so the escaping is the
 * one `/v1/env` uses) and for quoting values. Each destination is written atomically (a temporary file in the same
 * directory with the mode asked for, fsynced, renamed over it) and only when its content changed. A template that
 * fails keeps the last good file and says why in `/v1/status`. An optional command (`--exec-on-change`) runs after
 * files changed, debounced, without a shell.
 *
 * Handlebars is loaded only when a template is configured (the agent's memory budget).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rm } from 'node:fs/promises';
import type { HelperOptions } from 'handlebars';
import { quoteShell } from '../core/export';
import type { AgentConfig, RenderFormat } from './config';
import { AgentConfigError } from './errors';
import type { Logger } from './logger';
import { atomicWrite } from './snapshot';
import type { ChangeEvent, SyncEngine } from './sync';
import { readTrustedFile, TEMPLATE_SOURCE_RULE } from './trust';
import type { View } from './views';

export type TemplateConfig = AgentConfig['templates'][number];

export interface TemplateStatus {
  src: string;
  dest: string;
  mode: string;
  scope: string | null;
  /** `pending` (nothing rendered yet), `rendered`, `failed` (the last good file stays), `removed` (fail closed). */
  state: 'pending' | 'rendered' | 'failed' | 'removed';
  error: string | null;
  renderedAt: string | null;
  /** Writes of the destination (renders whose output was unchanged do not write). */
  writes: number;
}

type Compiled = (ctx: Record<string, string>) => string;

/** Environment variables an exec'd command never inherits from the agent. */
const WITHHELD = ['PHASE_SERVICE_TOKEN', 'PHASE_TOKEN', 'PHASE_AGENT_CLIENT_TOKEN'];

/** Where a template's scope travels in the render context (not enumerable: out of reach of `{{#each this}}`). */
const SCOPE = '__phaseBridgeScope';

const sha = (s: string): string => createHash('sha256').update(s).digest('base64url');

class Template {
  status: TemplateStatus;
  private lastHash?: string;
  fn!: Compiled;

  constructor(readonly cfg: TemplateConfig) {
    this.status = {
      src: cfg.src,
      dest: cfg.dest,
      mode: cfg.mode.toString(8).padStart(4, '0'),
      scope: cfg.scope ?? null,
      state: 'pending',
      error: null,
      renderedAt: null,
      writes: 0,
    };
  }

  /** The digest of `text` when it differs from what was last written; undefined when it does not. */
  changed(text: string): string | undefined {
    const h = sha(text);
    return h === this.lastHash ? undefined : h;
  }

  /** Records a write; `hash` is `changed`'s answer (undefined: the same text as the last write). */
  wrote(hash: string | undefined): void {
    if (hash !== undefined) this.lastHash = hash;
    this.status.writes++;
  }

  forget(): void {
    this.lastHash = undefined;
  }
}

export class Templates {
  readonly list: Template[];
  private writing: Promise<void> = Promise.resolve();
  private execTimer?: NodeJS.Timeout;
  private execRunning?: Promise<void>;
  private execAgain = false;
  private readonly exec?: string[];
  /** Runs of the exec-on-change command, and the last one's outcome (for /v1/status). */
  execRuns = 0;
  lastExec?: { at: string; code: number | null; signal: string | null; error?: string };

  private constructor(
    private readonly engine: SyncEngine,
    private readonly cfg: Pick<AgentConfig, 'templates' | 'execOnChange' | 'execDebounce' | 'once'>,
    private readonly log: Logger,
  ) {
    this.list = cfg.templates.map((t) => new Template(t));
    this.exec = cfg.execOnChange;
    if (this.exec && cfg.once) {
      this.log.warn('--exec-on-change is ignored with --once');
      this.exec = undefined;
    }
  }

  /**
   * Reads and compiles every template (the sources under the trust rules: owned by the agent's user or root, not
   * writable by others). A syntax error or an unreadable source is a configuration error (exit 2).
   */
  static async load(
    engine: SyncEngine,
    cfg: Pick<AgentConfig, 'templates' | 'execOnChange' | 'execDebounce' | 'once'>,
    log: Logger,
  ): Promise<Templates> {
    const t = new Templates(engine, cfg, log);
    // Loaded here, only when templates are configured: agents without templates do not carry it.
    const hb = (require('handlebars') as typeof import('handlebars')).create();
    t.registerHelpers(hb);
    const issues = [];
    for (const [i, tpl] of t.list.entries()) {
      const read = await readTrustedFile(tpl.cfg.src, TEMPLATE_SOURCE_RULE);
      if (!read) {
        issues.push({ setting: `templates.${i}.src`, source: tpl.cfg.src, message: 'no such file' });
        continue;
      }
      try {
        hb.parse(read.text);
      } catch (err) {
        issues.push({
          setting: `templates.${i}.src`,
          source: tpl.cfg.src,
          message: `not a valid template: ${(err as Error).message.split('\n').join(' ')}`,
        });
        continue;
      }
      const compiled = hb.compile(read.text, { strict: true, noEscape: true });
      tpl.fn = (ctx) => compiled(ctx, { allowProtoPropertiesByDefault: false });
    }
    if (issues.length) throw new AgentConfigError(issues);
    engine.on('change', (e) => t.onChange(e));
    // Rendered once the whole cycle is done: a template may read other scopes (`scope=`) than its own.
    engine.on('synced', () => {
      if (!t.dirty) return;
      t.dirty = false;
      void t.renderAll();
    });
    return t;
  }

  private viewOf(scope: string | undefined): View | undefined {
    return scope ? this.engine.scope(scope)?.view : this.engine.mergedView();
  }

  private registerHelpers(hb: typeof import('handlebars')): void {
    const view = (o: HelperOptions, helper: string): View => {
      const name = o.hash?.scope as string | undefined;
      if (name !== undefined && !this.engine.scope(name))
        throw new Error(`${helper}: no scope named ${JSON.stringify(name)}`);
      const v = this.viewOf(name ?? (o.data?.root?.[SCOPE] as string | undefined));
      if (!v) throw new Error(`${helper}: the secrets are not available`);
      return v;
    };
    const whole = (format: RenderFormat) =>
      function (this: unknown, ...args: unknown[]): string {
        const o = args[args.length - 1] as HelperOptions;
        const b = view(o, format).env(format);
        if (b.status !== 200) throw new Error(`${format}: ${JSON.parse(b.body.toString()).error}`);
        return b.body.toString('utf8');
      };
    const value = (helper: string, args: unknown[]): string => {
      if (args.length < 2) throw new Error(`${helper} needs a value: {{${helper} KEY}}`);
      const v = args[0];
      if (v === undefined || v === null)
        throw new Error(`${helper}: the value is missing (no secret of that name?)`);
      return String(v);
    };
    for (const f of ['dotenv', 'yaml', 'shell', 'toml', 'csv'] as const) hb.registerHelper(f, whole(f));
    // {{json}}: the whole scope as a JSON object; {{json VALUE}}: one value as a JSON string.
    hb.registerHelper('json', function (this: unknown, ...args: unknown[]) {
      if (args.length === 1) return whole('json').call(this, ...args);
      return JSON.stringify(value('json', args));
    });
    hb.registerHelper('jsonQuote', (...args: unknown[]) => JSON.stringify(value('jsonQuote', args)));
    hb.registerHelper('base64', (...args: unknown[]) =>
      Buffer.from(value('base64', args), 'utf8').toString('base64'),
    );
    hb.registerHelper('base64Decode', (...args: unknown[]) =>
      Buffer.from(value('base64Decode', args), 'base64').toString('utf8'),
    );
    hb.registerHelper('shellQuote', (...args: unknown[]) => quoteShell(value('shellQuote', args)));
    // {{env "KEY"}} (optionally scope="name"): the value, or an error when there is no such secret.
    hb.registerHelper('env', (...args: unknown[]) => {
      const key = value('env', args);
      const o = args[args.length - 1] as HelperOptions;
      const s = view(o, 'env').byKey.get(key);
      if (!s) throw new Error(`env: no secret named ${JSON.stringify(key)}`);
      return s.value;
    });
    // {{#if (has "KEY")}}: whether a secret exists (strict mode makes {{KEY}} an error when it does not).
    hb.registerHelper('has', (...args: unknown[]) => {
      const key = value('has', args);
      return view(args[args.length - 1] as HelperOptions, 'has').byKey.has(key);
    });
  }

  /** A view changed since the last render (rendered when the cycle ends). */
  private dirty = false;

  private onChange(e: ChangeEvent): void {
    if (e.kind === 'updated') {
      this.dirty = true;
      return;
    }
    for (const t of this.list) {
      if (t.cfg.scope && e.scope !== t.cfg.scope) continue;
      this.queue(() => this.remove(t, e.reason ?? 'scope unavailable'));
    }
  }

  private queue(job: () => Promise<void>): void {
    this.writing = this.writing.then(job);
  }

  /** Renders every template now (queued behind any write in flight). */
  renderAll(): Promise<void> {
    for (const t of this.list) this.queue(() => this.render(t));
    return this.writing;
  }

  /** Resolves when every queued write has finished (and, with `exec`, the command that follows them). */
  async flush(): Promise<void> {
    await this.writing;
    if (this.execTimer) {
      clearTimeout(this.execTimer);
      this.execTimer = undefined;
      this.runExec();
    }
    await this.execRunning;
  }

  private async render(t: Template): Promise<void> {
    const v = this.viewOf(t.cfg.scope);
    if (!v) return; // not servable: the last good file stays (a fail-closed scope removes it, see remove)
    const ctx: Record<string, string> = Object.fromEntries([...v.byKey].map(([k, s]) => [k, s.value]));
    if (t.cfg.scope) Object.defineProperty(ctx, SCOPE, { value: t.cfg.scope, enumerable: false });
    let text: string;
    try {
      text = t.fn(ctx);
    } catch (err) {
      this.failed(t, `template: ${(err as Error).message.split('\n')[0]}`);
      return;
    }
    const hash = t.changed(text);
    if (hash === undefined && t.status.state === 'rendered') return;
    try {
      await atomicWrite(t.cfg.dest, text, t.cfg.mode);
    } catch (err) {
      this.failed(t, `write: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return;
    }
    t.wrote(hash);
    t.status.state = 'rendered';
    t.status.error = null;
    t.status.renderedAt = new Date().toISOString();
    this.log.info({ src: t.cfg.src, dest: t.cfg.dest, mode: t.status.mode }, 'rendered template');
    this.scheduleExec();
  }

  private failed(t: Template, error: string): void {
    const first = t.status.error !== error;
    t.status.state = 'failed';
    t.status.error = error;
    if (first)
      this.log.error(
        { src: t.cfg.src, dest: t.cfg.dest, reason: error },
        'template failed; the last good file stays',
      );
  }

  private async remove(t: Template, reason: string): Promise<void> {
    try {
      await rm(t.cfg.dest, { force: true });
      t.forget();
      t.status.state = 'removed';
      t.status.error = reason;
      this.log.warn(
        { dest: t.cfg.dest, reason },
        'removed the rendered template: its secrets are no longer served',
      );
    } catch (err) {
      this.log.error(
        { dest: t.cfg.dest, err: (err as Error).message },
        'could not remove the rendered template',
      );
    }
  }

  private scheduleExec(): void {
    if (!this.exec) return;
    if (this.execTimer) clearTimeout(this.execTimer);
    this.execTimer = setTimeout(() => {
      this.execTimer = undefined;
      this.runExec();
    }, this.cfg.execDebounce);
    this.execTimer.unref();
  }

  /** Runs the command (never two at once: a change during a run makes one more run after it). */
  private runExec(): void {
    const argv = this.exec;
    if (!argv) return;
    if (this.execRunning) {
      this.execAgain = true;
      return;
    }
    const env = { ...process.env };
    for (const k of WITHHELD) delete env[k];
    this.execRuns++;
    this.execRunning = new Promise<void>((resolve) => {
      const started = new Date().toISOString();
      const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'inherit', 'inherit'], env });
      child.on('error', (err) => {
        this.lastExec = {
          at: started,
          code: null,
          signal: null,
          error: (err as NodeJS.ErrnoException).code ?? err.message,
        };
        this.log.error({ command: argv[0], err: this.lastExec.error }, 'exec-on-change could not start');
        resolve();
      });
      child.on('exit', (code, signal) => {
        this.lastExec = { at: started, code, signal };
        if (code === 0) this.log.info({ command: argv[0] }, 'exec-on-change finished');
        else this.log.warn({ command: argv[0], code, signal }, 'exec-on-change failed');
        resolve();
      });
    }).then(() => {
      this.execRunning = undefined;
      if (this.execAgain) {
        this.execAgain = false;
        this.runExec();
      }
    });
  }

  stop(): void {
    if (this.execTimer) clearTimeout(this.execTimer);
    this.execTimer = undefined;
  }

  statuses(): TemplateStatus[] {
    return this.list.map((t) => ({ ...t.status }));
  }
}
