/**
 * Agent configuration: defaults < config file < environment < flags, validated with zod. Every bad setting is
 * reported once, with where it came from (flag, environment variable or file key), in one AgentConfigError.
 */
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { parseDuration as parseGoDuration } from '../core/duration';
import { currentLogin } from '../core/login';
import { parsePssToken } from '../core/token';
import { splitCommand } from './argv';
import { AgentConfigError, type ConfigIssue } from './errors';

/**
 * `250ms`, `30s`, `5m`, `1h`, `2d` (or compound, `1h30m`: core's parser), or a bare number of seconds; `0` with or
 * without a unit. Returns milliseconds.
 */
export function parseDuration(input: unknown): number | undefined {
  if (typeof input === 'number')
    return Number.isFinite(input) && input >= 0 ? Math.round(input * 1000) : undefined;
  if (typeof input !== 'string') return undefined;
  const t = input.replace(/\s+/g, '');
  if (/^\d+(\.\d+)?$/.test(t)) return Math.round(Number(t) * 1000);
  if (/^0+(\.0+)?(ms|s|m|h|d)$/.test(t)) return 0;
  const ms = parseGoDuration(t);
  return ms === undefined ? undefined : Math.round(ms);
}

const duration = (what: string, min = 0) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    const ms = parseDuration(v);
    if (ms === undefined) {
      ctx.addIssue({
        code: 'custom',
        message: `${what} must be a duration like 500ms, 30s, 5m or 1h, or seconds`,
      });
      return z.NEVER;
    }
    if (ms < min) {
      ctx.addIssue({ code: 'custom', message: `${what} must be at least ${min} ms` });
      return z.NEVER;
    }
    return ms;
  });

const PATH_RE = /^\/[^\s]*$/;

/** Workload-identity logins (`--auth`, agent/auth/login.ts); `token` = a configured token or token file. */
export const AUTH_METHODS = ['token', 'kubernetes', 'oidc', 'aws-iam'] as const;
export type AuthSetting = (typeof AUTH_METHODS)[number];
/** Where the kubelet mounts a pod's service-account token (the default JWT file of `--auth kubernetes`). */
export const KUBERNETES_TOKEN_PATH = '/var/run/secrets/kubernetes.io/serviceaccount/token';
const nonEmpty = z.string().trim().min(1, 'must not be empty');
const tagList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : v.split(',')).map((t) => t.trim()).filter(Boolean));

/** One app/environment(/path/tags) whose secrets the agent holds. */
export const ScopeSchema = z
  .object({
    /** A short name for `?scope=` and logs; defaults to `<app>/<env>[<path>]`. */
    name: z
      .string()
      .regex(/^[A-Za-z0-9._:/-]{1,128}$/, 'must be 1-128 characters of letters, digits, . _ : / -')
      .optional(),
    /** App name (case-insensitive) as the token sees it. */
    app: nonEmpty.optional(),
    /** App id; wins over `app`. */
    appId: nonEmpty.optional(),
    /** Environment name, e.g. Production (case-insensitive; a unique substring also matches). */
    env: nonEmpty,
    /** Exact secret path (`/`, `/backend`); omitted = secrets at every path. */
    path: z.string().regex(PATH_RE, 'must start with / and contain no spaces').optional(),
    /** Only secrets carrying any of these tags. */
    tags: tagList.optional(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (!s.app && !s.appId)
      ctx.addIssue({ code: 'custom', message: 'needs app (name) or appId', path: ['app'] });
  });
export type ScopeConfig = z.output<typeof ScopeSchema> & { name: string };

/** File modes as octal digits (`"0640"`, `"640"`, or 640 in JSON); nothing the group or others could write. */
const fileMode = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const digits = String(v).trim();
  if (!/^0?[0-7]{3}$/.test(digits)) {
    ctx.addIssue({ code: 'custom', message: 'mode must be octal digits like 0600 or 0640' });
    return z.NEVER;
  }
  const mode = parseInt(digits, 8);
  if (mode & 0o022) {
    ctx.addIssue({
      code: 'custom',
      message: `mode ${digits} lets the group or others write the file: use 0600, 0640 or 0644`,
    });
    return z.NEVER;
  }
  return mode;
});

/** `--template SRC:DEST[:MODE]` / `templates` in the config file. */
export const TemplateSchema = z
  .object({
    /** The Handlebars template (read once at start, under the trust rules). */
    src: z
      .string()
      .min(1)
      .transform((p) => resolve(p)),
    /** The file written from it (atomically, with `mode`). */
    dest: z
      .string()
      .min(1)
      .transform((p) => resolve(p)),
    mode: fileMode.default('0600'),
    /** Render from one scope (default: every scope merged). */
    scope: z.string().optional(),
  })
  .strict();

export const RENDER_FORMATS = ['dotenv', 'json', 'yaml', 'shell', 'toml', 'csv'] as const;
export type RenderFormat = (typeof RENDER_FORMATS)[number];
export const ON_CHANGE = ['restart', 'signal', 'none'] as const;

const portSchema = z.coerce
  .number({ invalid_type_error: 'must be a port number' })
  .int('must be an integer')
  .min(0, 'must be 0-65535')
  .max(65535, 'must be 0-65535');

/** Everything the agent accepts; the same keys are valid in a JSON config file. */
export const AgentConfigSchema = z
  .object({
    /** Phase console URL (the agent calls `{host}/service/secrets/...`). */
    host: z
      .string()
      .url('must be a URL like https://console.phase.dev')
      .refine((u) => /^https?:\/\//i.test(u), 'must use http:// or https://')
      .default('https://console.phase.dev'),
    /** A `pss_service:` or `pss_user:` token (prefer tokenFile). */
    token: z.string().optional(),
    /** A file holding the token; watched and re-read on rotation. */
    tokenFile: z.string().min(1).optional(),
    /** Log in with a workload identity instead of holding a token (docs/identity.md, "Agent and run"). */
    auth: z.enum(AUTH_METHODS, { message: `must be one of ${AUTH_METHODS.join(', ')}` }).default('token'),
    /** The service account to log in as (login methods). */
    accountId: z.string().trim().min(1, 'must not be empty').optional(),
    /** kubernetes / oidc: the file holding the JWT, re-read at each login. */
    jwtFile: z.string().min(1).optional(),
    /** Login methods: the TTL to ask for (whole seconds); omitted = the identity's default. */
    tokenTtl: duration('tokenTtl', 1000)
      .refine((ms) => ms % 1000 === 0, 'tokenTtl must be whole seconds')
      .optional(),
    /** aws-iam: sign for this STS endpoint instead of the region's (tests, VPC endpoints). */
    stsEndpoint: z
      .string()
      .url('must be a URL like https://sts.eu-west-1.amazonaws.com')
      .refine((u) => /^https?:\/\//i.test(u), 'must use http:// or https://')
      .optional(),
    scopes: z
      .array(ScopeSchema)
      .min(
        1,
        'at least one scope is required: --app/--app-id and --env, PHASE_APP/PHASE_ENV, --scope, or scopes in the config file',
      )
      .default([]),
    /** TCP listen address; port 0 picks a free port. */
    listenHost: z.string().min(1).default('127.0.0.1'),
    port: portSchema.default(8787),
    /** Serve only on the unix socket (no TCP listener). */
    noTcp: z.boolean().default(false),
    /** Also listen on this unix socket (mode 0660). */
    socket: z.string().min(1).optional(),
    /** Required to listen beyond loopback (TLS is then required too). */
    allowNonLoopback: z.boolean().default(false),
    tlsCert: z.string().min(1).optional(),
    tlsKey: z.string().min(1).optional(),
    /** Extra Host header names accepted besides loopback (only with allowNonLoopback). */
    allowedHosts: z.array(z.string().min(1)).default([]),
    /** The client token callers send in X-Phase-Agent-Token; generated when neither this nor the file exists. */
    clientToken: z.string().min(16, 'must be at least 16 characters').optional(),
    clientTokenFile: z.string().min(1).optional(),
    /**
     * Where the client token file and the snapshot live: created 0750 when missing, and refused when another user
     * owns it or others can write it (agent/trust.ts). Default: see defaultDataDir.
     */
    dataDir: z.string().min(1).optional(),
    /** Keep an offline snapshot (ciphertext only). */
    snapshot: z.boolean().default(true),
    snapshotFile: z.string().min(1).optional(),
    refreshInterval: duration('refreshInterval', 50).default('60s'),
    /** Fraction of the interval added or removed at random to spread refreshes. */
    jitter: z.number().min(0, 'must be 0-0.5').max(0.5, 'must be 0-0.5').default(0.1),
    /** How long last known good values are served while the upstream fails. */
    maxStale: duration('maxStale', 0).default('24h'),
    /** Upstream calls allowed per minute per scope in steady state. */
    budgetPerMinute: z.number().positive('must be > 0').default(1),
    /** Extra calls allowed in a burst (start-up, changes, rotation). */
    budgetBurst: z.number().int().min(2, 'must be >= 2').default(4),
    /** Subscribe to the upstream's change stream (phase-bridge servers; real Phase has none: polling only). */
    push: z.boolean().default(true),
    /** Calls per scope the syncs the change stream triggers (and forced refreshes) may make on top, refilled at budgetPerMinute. */
    budgetPushBurst: z.number().int().min(0, 'must be >= 0').default(10),
    /** Timeout of one upstream HTTP call. */
    upstreamTimeout: duration('upstreamTimeout', 100).default('15s'),
    /** How long a request waits for the first sync before 503. */
    firstSyncWait: duration('firstSyncWait', 0).default('10s'),
    tokenPollInterval: duration('tokenPollInterval', 50).default('5s'),
    resolveReferences: z.boolean().default(true),
    strictReferences: z.boolean().default(false),
    render: z
      .object({
        file: z.string().min(1),
        format: z.enum(RENDER_FORMATS).default('dotenv'),
        scope: z.string().optional(),
      })
      .strict()
      .optional(),
    /** Files rendered from Handlebars templates (agent/templates.ts). */
    templates: z.array(TemplateSchema).default([]),
    /** Run after rendered templates changed (debounced): argv, or a command line split without a shell. */
    execOnChange: z
      .union([z.string(), z.array(z.string().min(1)).min(1)])
      .transform((v, ctx) => {
        let argv: string[];
        try {
          argv = typeof v === 'string' ? splitCommand(v) : v;
        } catch (err) {
          ctx.addIssue({ code: 'custom', message: (err as Error).message });
          return z.NEVER;
        }
        if (!argv.length) {
          ctx.addIssue({ code: 'custom', message: 'must name a command' });
          return z.NEVER;
        }
        return argv;
      })
      .optional(),
    /** Changes to rendered templates within this window run the command once. */
    execDebounce: duration('execDebounce', 0).default('1s'),
    /** Exit after the first successful sync (and render): an init-container mode. */
    once: z.boolean().default(false),
    logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    /**
     * Opt-in memory upkeep (agent/memory.ts): when > 0, the agent runs a full collection after each sync that
     * decrypted, and whenever the V8 heap has grown this many MB above what the last one left. 0 (default) leaves
     * memory to V8. It lowers peak resident memory and costs throughput on the hottest reads (docs/performance.md).
     */
    heapHeadroom: z
      .preprocess(
        // the environment and flags give strings; only plain numbers are accepted (no true -> 1)
        (v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v),
        z.number({ invalid_type_error: 'must be a number of MB' }).min(0, 'must be >= 0 (MB)'),
      )
      .default(0),
    /** Grace period for in-flight requests on SIGTERM. */
    shutdownGrace: duration('shutdownGrace', 0).default('10s'),
  })
  .strict()
  .superRefine((c, ctx) => {
    const login = c.auth !== 'token';
    if (!login && !c.token && !c.tokenFile)
      ctx.addIssue({
        code: 'custom',
        path: ['token'],
        message:
          'no token: set PHASE_SERVICE_TOKEN / PHASE_TOKEN, --token-file or tokenFile, or log in with --auth kubernetes|oidc|aws-iam',
      });
    if (login) {
      if (c.token || c.tokenFile)
        ctx.addIssue({
          code: 'custom',
          path: ['auth'],
          message: `--auth ${c.auth} logs in by itself: do not also configure ${c.token ? 'a token' : 'a token file'} in the same place`,
        });
      if (!c.accountId)
        ctx.addIssue({
          code: 'custom',
          path: ['accountId'],
          message: `--auth ${c.auth} needs the service account's id: --account-id, PHASE_SERVICE_ACCOUNT_ID or accountId`,
        });
      if (c.auth === 'oidc' && !c.jwtFile)
        ctx.addIssue({
          code: 'custom',
          path: ['jwtFile'],
          message: '--auth oidc needs --jwt-file: the file your platform or CI writes its OIDC token to',
        });
      if (c.auth === 'aws-iam' && c.jwtFile)
        ctx.addIssue({
          code: 'custom',
          path: ['jwtFile'],
          message: 'only --auth kubernetes and oidc read a JWT file',
        });
      if (c.auth !== 'aws-iam' && c.stsEndpoint)
        ctx.addIssue({ code: 'custom', path: ['stsEndpoint'], message: 'only --auth aws-iam signs for STS' });
    }
    if (c.token) {
      try {
        parsePssToken(c.token);
      } catch (err) {
        ctx.addIssue({ code: 'custom', path: ['token'], message: (err as Error).message });
      }
    }
    if (!isLoopbackHost(c.listenHost) && !c.noTcp) {
      if (!c.allowNonLoopback)
        ctx.addIssue({
          code: 'custom',
          path: ['listenHost'],
          message: `${c.listenHost} is not loopback: pass --allow-non-loopback (and TLS) to listen beyond this machine`,
        });
      if (!c.tlsCert || !c.tlsKey)
        ctx.addIssue({
          code: 'custom',
          path: ['tlsCert'],
          message: 'listening beyond loopback requires TLS: set --tls-cert and --tls-key',
        });
    }
    if (!!c.tlsCert !== !!c.tlsKey)
      ctx.addIssue({
        code: 'custom',
        path: ['tlsKey'],
        message: 'tlsCert and tlsKey must be given together',
      });
    if (c.noTcp && !c.socket)
      ctx.addIssue({ code: 'custom', path: ['noTcp'], message: 'noTcp needs a unix socket (--socket)' });
    const names = new Set<string>();
    c.scopes.forEach((s, i) => {
      const name = scopeName(s);
      if (names.has(name))
        ctx.addIssue({
          code: 'custom',
          path: ['scopes', i, 'name'],
          message: `duplicate scope name ${name}`,
        });
      names.add(name);
    });
    const dests = new Set<string>(c.render ? [resolve(c.render.file)] : []);
    c.templates.forEach((t, i) => {
      if (t.scope !== undefined && !names.has(t.scope))
        ctx.addIssue({
          code: 'custom',
          path: ['templates', i, 'scope'],
          message: `no scope named ${t.scope} (scopes: ${[...names].join(', ')})`,
        });
      if (dests.has(t.dest))
        ctx.addIssue({
          code: 'custom',
          path: ['templates', i, 'dest'],
          message: `${t.dest} is written twice (another template or --render)`,
        });
      dests.add(t.dest);
    });
    if (c.execOnChange && !c.templates.length)
      ctx.addIssue({
        code: 'custom',
        path: ['execOnChange'],
        message: 'execOnChange runs after templates change: add --template',
      });
  });

export type AgentConfigInput = z.input<typeof AgentConfigSchema>;
export type AgentConfig = Omit<z.output<typeof AgentConfigSchema>, 'scopes'> & {
  scopes: ScopeConfig[];
  dataDir: string;
  /** True when no data directory was configured: the agent then creates its own (0700) or refuses (trust.ts). */
  dataDirIsDefault: boolean;
  clientTokenFile: string;
  snapshotFile: string;
};

/** True when the agent logs in with a workload identity (rather than holding a configured token). */
export function isLogin(cfg: Pick<AgentConfig, 'auth'>): cfg is Pick<AgentConfig, 'auth'> & {
  auth: Exclude<AuthSetting, 'token'>;
} {
  return cfg.auth !== 'token';
}

export function isLoopbackHost(h: string): boolean {
  const host = h.replace(/^\[|\]$/g, '').toLowerCase();
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

function scopeName(s: { name?: string; app?: string; appId?: string; env: string; path?: string }): string {
  return s.name ?? `${s.app ?? s.appId}/${s.env}${s.path && s.path !== '/' ? s.path : ''}`;
}

/** Raw, unvalidated settings plus where each top-level key came from. */
export interface ConfigLayer {
  values: Record<string, unknown>;
  source: Record<string, string>;
}

/** Reads a JSON config file; a syntax error is reported as one config issue. */
export function readConfigFile(path: string): ConfigLayer {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new AgentConfigError([
      {
        setting: 'config',
        source: path,
        message: `cannot read: ${(err as NodeJS.ErrnoException).code ?? err}`,
      },
    ]);
  }
  let values: unknown;
  try {
    values = JSON.parse(text);
  } catch (err) {
    throw new AgentConfigError([
      { setting: 'config', source: path, message: `not valid JSON: ${(err as Error).message}` },
    ]);
  }
  if (typeof values !== 'object' || values === null || Array.isArray(values))
    throw new AgentConfigError([{ setting: 'config', source: path, message: 'must be a JSON object' }]);
  const source: Record<string, string> = {};
  for (const k of Object.keys(values)) source[k] = `config file ${path}`;
  return { values: values as Record<string, unknown>, source };
}

/** Environment variables the agent reads, and the setting each maps to. */
export const ENV_VARS: Record<string, string> = {
  PHASE_SERVICE_TOKEN: 'token',
  PHASE_TOKEN: 'token',
  PHASE_TOKEN_FILE: 'tokenFile',
  PHASE_AGENT_AUTH: 'auth',
  PHASE_SERVICE_ACCOUNT_ID: 'accountId',
  PHASE_AGENT_JWT_FILE: 'jwtFile',
  PHASE_AGENT_TOKEN_TTL: 'tokenTtl',
  PHASE_AGENT_STS_ENDPOINT: 'stsEndpoint',
  PHASE_HOST: 'host',
  PHASE_APP: 'scope.app',
  PHASE_APP_ID: 'scope.appId',
  PHASE_ENV: 'scope.env',
  PHASE_PATH: 'scope.path',
  PHASE_TAGS: 'scope.tags',
  PHASE_AGENT_LISTEN: 'listenHost',
  PHASE_AGENT_PORT: 'port',
  PHASE_AGENT_SOCKET: 'socket',
  PHASE_AGENT_CLIENT_TOKEN: 'clientToken',
  PHASE_AGENT_CLIENT_TOKEN_FILE: 'clientTokenFile',
  PHASE_AGENT_DATA_DIR: 'dataDir',
  PHASE_AGENT_REFRESH: 'refreshInterval',
  PHASE_AGENT_MAX_STALE: 'maxStale',
  PHASE_AGENT_LOG_LEVEL: 'logLevel',
  PHASE_AGENT_HEAP_HEADROOM: 'heapHeadroom',
};

/**
 * The lowest layer: the host and token of `phase-bridge login`, so `agent` and `run` work after a login with no token
 * of their own. Any token, token file or login given anywhere else wins over it.
 */
export function loginLayer(env: NodeJS.ProcessEnv): ConfigLayer {
  const saved = currentLogin({ ...env, PHASE_HOST: undefined, PHASE_TOKEN: undefined });
  if (!saved) return { values: {}, source: {} };
  const where = `phase-bridge login (${saved.source})`;
  return { values: { host: saved.host, token: saved.token }, source: { host: where, token: where } };
}

/** Reads the environment into a config layer (PHASE_SERVICE_TOKEN wins over PHASE_TOKEN, as in the Phase CLI). */
export function envLayer(env: NodeJS.ProcessEnv): ConfigLayer {
  const values: Record<string, unknown> = {};
  const source: Record<string, string> = {};
  const scope: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV_VARS)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    if (key === 'token' && values.token !== undefined) continue;
    if (key.startsWith('scope.')) {
      scope[key.slice(6)] = v;
      source.scopes = source.scopes ? `${source.scopes}, ${name}` : name;
    } else {
      values[key] = v;
      source[key] = name;
    }
  }
  if (Object.keys(scope).length) values.scopes = [scope];
  return { values, source };
}

/** Merges layers left to right (later wins, per top-level key) and validates. */
export function buildConfig(layers: ConfigLayer[]): AgentConfig {
  const values: Record<string, unknown> = {};
  const source: Record<string, string> = {};
  for (const l of layers) {
    for (const [k, v] of Object.entries(l.values)) {
      if (v === undefined) continue;
      values[k] = v;
      source[k] = l.source[k] ?? 'default';
    }
  }
  // The credential of the highest layer that sets one wins: a token given directly beats a token file from a lower
  // layer, and vice versa; a login (`auth` other than token) beats both, and both beat a lower layer's login.
  const tokenLayer = layers
    .map(
      (l) =>
        ('token' in l.values && l.values.token !== undefined) ||
        ('tokenFile' in l.values && l.values.tokenFile !== undefined) ||
        ('auth' in l.values && l.values.auth !== undefined && l.values.auth !== 'token'),
    )
    .lastIndexOf(true);
  if (tokenLayer >= 0) {
    const l = layers[tokenLayer];
    if (l.values.token === undefined) delete values.token;
    if (l.values.tokenFile === undefined) delete values.tokenFile;
    if (l.values.auth === undefined) delete values.auth;
  }
  const parsed = AgentConfigSchema.safeParse(values);
  if (!parsed.success) {
    const seen = new Set<string>();
    const issues: ConfigIssue[] = [];
    for (const i of parsed.error.issues) {
      const setting = i.path.length ? i.path.join('.') : 'config';
      if (seen.has(setting)) continue; // one clear error per bad setting
      seen.add(setting);
      const top = String(i.path[0] ?? '');
      const message = i.code === 'unrecognized_keys' ? `unknown setting(s): ${i.keys.join(', ')}` : i.message;
      issues.push({ setting, source: source[top] ?? 'not set', message });
    }
    throw new AgentConfigError(issues);
  }
  const c = parsed.data;
  const dataDir = defaultDataDir(c.dataDir);
  const inData = (p: string | undefined, dflt: string) =>
    p ? (isAbsolute(p) ? p : resolve(p)) : join(dataDir, dflt);
  const login = c.auth !== 'token';
  return {
    ...c,
    scopes: c.scopes.map((s) => ({ ...s, name: scopeName(s) })),
    jwtFile:
      c.auth === 'kubernetes' || c.auth === 'oidc' ? resolve(c.jwtFile ?? KUBERNETES_TOKEN_PATH) : undefined,
    // A snapshot opens only with the token that wrote it, and every login mints a new one: none is kept.
    snapshot: login ? false : c.snapshot,
    dataDir,
    dataDirIsDefault: c.dataDir === undefined,
    clientTokenFile: inData(c.clientTokenFile, 'client-token'),
    snapshotFile: inData(c.snapshotFile, 'snapshot.json'),
  };
}

/**
 * `--data-dir`, else `$XDG_RUNTIME_DIR/phase-bridge-agent-<uid>`, else the same under the temp directory. The
 * default is only a name: the agent creates it 0700 and refuses it when it exists and is not its own
 * (agent/trust.ts, ensureDataDir).
 */
export function defaultDataDir(dataDir?: string): string {
  return resolve(
    dataDir ??
      join(process.env.XDG_RUNTIME_DIR || tmpdir(), `phase-bridge-agent-${process.getuid?.() ?? 'user'}`),
  );
}

/** Parses `SRC:DEST[:MODE]` (the repeatable --template flag); the mode is the last part when it is octal digits. */
export function parseTemplateFlag(spec: string): Record<string, unknown> {
  const parts = spec.split(':');
  if (parts.length < 2) return { src: spec };
  const last = parts[parts.length - 1];
  if (parts.length >= 3 && /^0?[0-7]{3}$/.test(last))
    return { src: parts[0], dest: parts.slice(1, -1).join(':'), mode: last };
  return { src: parts[0], dest: parts.slice(1).join(':') };
}

/** Parses `app=backend,env=Production,path=/api,tags=a;b` (the repeatable --scope flag). */
export function parseScopeFlag(spec: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const part of spec.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 1) {
      out[`invalid:${part}`] = part;
      continue;
    }
    const k = part.slice(0, eq).trim();
    const v = part.slice(eq + 1).trim();
    const key = k === 'app-id' || k === 'app_id' ? 'appId' : k;
    out[key] = key === 'tags' ? v.split(';') : v;
  }
  return out;
}
