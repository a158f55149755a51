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

const execArgv = z.union([z.string(), z.array(z.string().min(1)).min(1)]).transform((v, ctx) => {
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
});

/** A `--no-x` flag: commander gives true when absent; only an explicit `--no-x` sets the setting. */
const onlyWhenNegated = (v: unknown): unknown => (v === false ? false : undefined);

/** How a setting is taken from the command line (commander). */
export interface SettingFlag {
  /** Commander declaration, e.g. `--refresh <duration>` or `--no-snapshot`. */
  decl: string;
  /** Help text, when not the docs' meaning. */
  help?: string;
  /** Only `phase-bridge agent` takes it (`run` does not). */
  agentOnly?: boolean;
  /** Repeatable: the values are collected in a list. */
  repeatable?: boolean;
  /** A number given as text (`--jitter 0.2`). */
  numeric?: boolean;
  choices?: readonly string[];
  /** Commander's own default (not the setting's). */
  flagDefault?: string;
  /** Flag value → setting value; undefined leaves the setting unset. */
  value?: (v: unknown) => unknown;
  /** Read by configFromOptions's own code (scopes, render): the table only declares and documents it. */
  custom?: boolean;
}

/** One row of the settings table: the zod schema, the flag, the environment variables and the docs row. */
export interface Setting {
  /** Top-level key (in the config file, and in error messages). */
  key: string;
  /** The key's schema; absent on rows that document a part of another key (`scopes[].app`). */
  schema?: z.ZodTypeAny;
  flag?: SettingFlag;
  /** Environment variables, first wins. */
  env?: readonly string[];
  /** Environment variables of the first scope set this field of it (`PHASE_APP` → `scopes[0].app`). */
  scopeField?: string;
  /** Docs: the config key cell, when not `` `key` ``. */
  docKey?: string;
  /** Docs: the flag cell, when not the flag's name. */
  flagDoc?: string;
  /** Docs: the default, as text. */
  dflt: string;
  /** Docs (and flag help): what it does. Markdown. */
  doc: string;
}

/**
 * Every agent setting, declared once: the zod schema (AgentConfigSchema), the flags (agent/cli.ts), the environment
 * variables (envLayer) and the table in docs/agent.md (settingsMarkdown; a test keeps the two the same) come from
 * here. Order is the docs' order.
 */
export const SETTINGS = [
  {
    key: 'host',
    schema: z
      .string()
      .url('must be a URL like https://console.phase.dev')
      .refine((u) => /^https?:\/\//i.test(u), 'must use http:// or https://')
      .default('https://console.phase.dev'),
    flag: { decl: '--host <url>' },
    env: ['PHASE_HOST'],
    dflt: '`https://console.phase.dev`',
    doc: 'Phase console URL; the agent calls `{host}/service/secrets/tokens/` and `{host}/service/secrets/`',
  },
  {
    key: 'token',
    schema: z.string().optional(),
    env: ['PHASE_SERVICE_TOKEN', 'PHASE_TOKEN'],
    dflt: '—',
    doc: 'A `pss_service:` (or `pss_user:`) token',
  },
  {
    key: 'tokenFile',
    schema: z.string().min(1).optional(),
    flag: { decl: '--token-file <file>' },
    env: ['PHASE_TOKEN_FILE'],
    dflt: '—',
    doc: 'File holding the token; watched, a new token is used at once (wins over a token from a lower layer)',
  },
  {
    key: 'auth',
    schema: z.enum(AUTH_METHODS, { message: `must be one of ${AUTH_METHODS.join(', ')}` }).default('token'),
    flag: {
      decl: '--auth <method>',
      help: 'log in instead of holding a token: kubernetes | oidc | aws-iam',
    },
    env: ['PHASE_AGENT_AUTH'],
    dflt: '`token`',
    doc: '`kubernetes`, `oidc` or `aws-iam`: log in with a workload identity instead of holding a token ([below](#logging-in-with-a-workload-identity---auth)); the highest layer that sets a token, a token file or a login wins',
  },
  {
    key: 'accountId',
    schema: z.string().trim().min(1, 'must not be empty').optional(),
    flag: { decl: '--account-id <id>' },
    env: ['PHASE_SERVICE_ACCOUNT_ID'],
    dflt: '—',
    doc: 'The service account to log in as (required with `auth`)',
  },
  {
    key: 'jwtFile',
    schema: z.string().min(1).optional(),
    flag: { decl: '--jwt-file <file>' },
    env: ['PHASE_AGENT_JWT_FILE'],
    dflt: 'kubernetes: `/var/run/secrets/kubernetes.io/serviceaccount/token`',
    doc: '`kubernetes`, `oidc` (required): the file holding the JWT, re-read at each login',
  },
  {
    key: 'tokenTtl',
    schema: duration('tokenTtl', 1000)
      .refine((ms) => ms % 1000 === 0, 'tokenTtl must be whole seconds')
      .optional(),
    flag: { decl: '--token-ttl <duration>' },
    env: ['PHASE_AGENT_TOKEN_TTL'],
    dflt: "the identity's default",
    doc: "TTL to ask for at each login, whole seconds (at most the identity's `max_ttl_seconds`)",
  },
  {
    key: 'stsEndpoint',
    schema: z
      .string()
      .url('must be a URL like https://sts.eu-west-1.amazonaws.com')
      .refine((u) => /^https?:\/\//i.test(u), 'must use http:// or https://')
      .optional(),
    flag: { decl: '--sts-endpoint <url>' },
    env: ['PHASE_AGENT_STS_ENDPOINT'],
    dflt: '`https://sts.amazonaws.com` for us-east-1, else `https://sts.<region>.amazonaws.com`',
    doc: "`aws-iam`: the STS endpoint to sign for (the identity's `stsEndpoint` must match)",
  },
  {
    key: 'scopes',
    docKey: '`scopes[].app`',
    flag: { decl: '--app <name>', custom: true },
    env: ['PHASE_APP'],
    scopeField: 'app',
    dflt: '—',
    doc: 'App name, case-insensitive',
  },
  {
    key: 'scopes',
    docKey: '`scopes[].appId`',
    flag: { decl: '--app-id <id>', custom: true },
    env: ['PHASE_APP_ID'],
    scopeField: 'appId',
    dflt: '—',
    doc: 'App id (wins over the name)',
  },
  {
    key: 'scopes',
    docKey: '`scopes[].env`',
    flag: { decl: '--env <name>', custom: true },
    env: ['PHASE_ENV'],
    scopeField: 'env',
    dflt: '—',
    doc: 'Environment name, case-insensitive; a unique substring also matches (`prod`)',
  },
  {
    key: 'scopes',
    docKey: '`scopes[].path`',
    flag: { decl: '--path <path>', custom: true },
    env: ['PHASE_PATH'],
    scopeField: 'path',
    dflt: 'all paths',
    doc: 'Exact secret path, e.g. `/backend`',
  },
  {
    key: 'scopes',
    docKey: '`scopes[].tags`',
    flag: { decl: '--tags <tags>', custom: true },
    env: ['PHASE_TAGS'],
    scopeField: 'tags',
    dflt: '—',
    doc: 'Only secrets with any of these tags (comma-separated)',
  },
  {
    key: 'scopes',
    docKey: '`scopes[].name`',
    flagDoc: '`--scope name=…`',
    dflt: '`<app>/<env>[<path>]`',
    doc: 'Name used by `?scope=` and in `/v1/status`',
  },
  {
    key: 'scopes',
    schema: z
      .array(ScopeSchema)
      .min(
        1,
        'at least one scope is required: --app/--app-id and --env, PHASE_APP/PHASE_ENV, --scope, or scopes in the config file',
      )
      .default([]),
    flag: {
      decl: '--scope <spec>',
      repeatable: true,
      custom: true,
      help: 'a scope as app=NAME|app-id=ID,env=NAME[,path=/p][,tags=a;b][,name=N]',
    },
    flagDoc: '`--scope SPEC` (repeatable)',
    dflt: '—',
    doc: 'Several scopes: `app=shop,env=Production,path=/api,tags=a;b,name=api` (`app-id=` for ids)',
  },
  {
    key: 'listenHost',
    schema: z.string().min(1).default('127.0.0.1'),
    flag: { decl: '--listen <host>', agentOnly: true },
    env: ['PHASE_AGENT_LISTEN'],
    dflt: '`127.0.0.1`',
    doc: 'TCP address; anything not loopback needs `allowNonLoopback` **and** TLS',
  },
  {
    key: 'port',
    schema: portSchema.default(8787),
    flag: { decl: '--port <port>', agentOnly: true },
    env: ['PHASE_AGENT_PORT'],
    dflt: '`8787`',
    doc: 'TCP port (`0`: any free port)',
  },
  {
    key: 'socket',
    schema: z.string().min(1).optional(),
    flag: { decl: '--socket <path>', agentOnly: true },
    env: ['PHASE_AGENT_SOCKET'],
    dflt: '—',
    doc: 'Also listen on this unix socket (mode 0660)',
  },
  {
    key: 'noTcp',
    schema: z.boolean().default(false),
    flag: { decl: '--no-tcp', agentOnly: true, value: (v) => (v === false ? true : undefined) },
    dflt: '`false`',
    doc: 'Only the unix socket',
  },
  {
    key: 'allowNonLoopback',
    schema: z.boolean().default(false),
    flag: { decl: '--allow-non-loopback', agentOnly: true },
    dflt: '`false`',
    doc: 'Permit a non-loopback `listenHost`',
  },
  {
    key: 'tlsCert',
    schema: z.string().min(1).optional(),
    flag: { decl: '--tls-cert <file>', agentOnly: true },
    dflt: '—',
    doc: 'PEM certificate; serve HTTPS (with `tlsKey`)',
  },
  {
    key: 'tlsKey',
    schema: z.string().min(1).optional(),
    flag: { decl: '--tls-key <file>', agentOnly: true },
    dflt: '—',
    doc: 'PEM private key of `tlsCert`',
  },
  {
    key: 'allowedHosts',
    schema: z.array(z.string().min(1)).default([]),
    flag: { decl: '--allowed-host <name>', agentOnly: true, repeatable: true },
    dflt: '`[]`',
    doc: 'Extra `Host` names accepted besides loopback',
  },
  {
    key: 'clientToken',
    schema: z.string().min(16, 'must be at least 16 characters').optional(),
    env: ['PHASE_AGENT_CLIENT_TOKEN'],
    dflt: 'generated',
    doc: 'The client token (at least 16 characters)',
  },
  {
    key: 'clientTokenFile',
    schema: z.string().min(1).optional(),
    flag: { decl: '--client-token-file <file>', agentOnly: true },
    env: ['PHASE_AGENT_CLIENT_TOKEN_FILE'],
    dflt: '`<dataDir>/client-token`',
    doc: "Read if it exists and is the agent's own (see [trust](#what-the-agent-trusts-on-disk)), otherwise created with a random token, mode 0640",
  },
  {
    key: 'dataDir',
    schema: z.string().min(1).optional(),
    flag: { decl: '--data-dir <dir>' },
    env: ['PHASE_AGENT_DATA_DIR'],
    dflt: '`$XDG_RUNTIME_DIR/phase-bridge-agent-<uid>` (or the same under the temp dir), created 0700 by the agent',
    doc: 'Client token file and snapshot; a named one is created 0750 when missing',
  },
  {
    key: 'snapshot',
    schema: z.boolean().default(true),
    flag: { decl: '--no-snapshot', value: onlyWhenNegated },
    dflt: '`true` (`false` with `auth`)',
    doc: 'Keep the offline snapshot',
  },
  {
    key: 'snapshotFile',
    schema: z.string().min(1).optional(),
    flag: { decl: '--snapshot-file <file>' },
    dflt: '`<dataDir>/snapshot.json`',
    doc: 'Snapshot path',
  },
  {
    key: 'refreshInterval',
    schema: duration('refreshInterval', 50).default('60s'),
    flag: { decl: '--refresh <duration>' },
    env: ['PHASE_AGENT_REFRESH'],
    dflt: '`60s`',
    doc: 'Background refresh period (minimum 50 ms)',
  },
  {
    key: 'jitter',
    schema: z.number().min(0, 'must be 0-0.5').max(0.5, 'must be 0-0.5').default(0.1),
    flag: { decl: '--jitter <fraction>', numeric: true },
    dflt: '`0.1`',
    doc: 'Each wait is the interval ± this fraction, at random',
  },
  {
    key: 'maxStale',
    schema: duration('maxStale', 0).default('24h'),
    flag: { decl: '--max-stale <duration>' },
    env: ['PHASE_AGENT_MAX_STALE'],
    dflt: '`24h`',
    doc: 'How long last known good values are served while the upstream fails',
  },
  {
    key: 'budgetPerMinute',
    schema: z.number().positive('must be > 0').default(1),
    flag: { decl: '--budget-per-minute <n>', numeric: true },
    dflt: '`1`',
    doc: 'Upstream calls per minute **per scope** in steady state',
  },
  {
    key: 'budgetBurst',
    schema: z.number().int().min(2, 'must be >= 2').default(4),
    flag: { decl: '--budget-burst <n>', numeric: true },
    dflt: '`4`',
    doc: 'Burst per scope (start-up, a change; a token rotation draws on `budgetPushBurst` first)',
  },
  {
    key: 'push',
    schema: z.boolean().default(true),
    flag: { decl: '--no-push', value: onlyWhenNegated },
    dflt: '`true`',
    doc: "Subscribe to the upstream's change stream and sync a changed scope at once (see [Push](#push-changes-in-under-a-second))",
  },
  {
    key: 'budgetPushBurst',
    schema: z.number().int().min(0, 'must be >= 0').default(10),
    flag: { decl: '--budget-push-burst <n>', numeric: true },
    dflt: '`10`',
    doc: "Calls per scope that pushed syncs, requested refreshes and token rotations (a rewritten token file, a login's renewal) may make on top of the polling budget, refilled at `budgetPerMinute`",
  },
  {
    key: 'upstreamTimeout',
    schema: duration('upstreamTimeout', 100).default('15s'),
    flag: { decl: '--upstream-timeout <duration>' },
    dflt: '`15s`',
    doc: 'Timeout of one upstream call',
  },
  {
    key: 'firstSyncWait',
    schema: duration('firstSyncWait', 0).default('10s'),
    dflt: '`10s`',
    doc: 'How long a request that arrives before the first sync waits for it',
  },
  {
    key: 'tokenPollInterval',
    schema: duration('tokenPollInterval', 50).default('5s'),
    flag: { decl: '--token-poll <duration>' },
    dflt: '`5s`',
    doc: 'Token file polling (in addition to fs.watch)',
  },
  {
    key: 'resolveReferences',
    schema: z.boolean().default(true),
    flag: { decl: '--no-resolve-references', value: onlyWhenNegated },
    dflt: '`true`',
    doc: 'Resolve `${...}` references',
  },
  {
    key: 'strictReferences',
    schema: z.boolean().default(false),
    flag: { decl: '--strict-references' },
    dflt: '`false`',
    doc: "An unresolvable reference fails the scope's sync (the last good values stay)",
  },
  {
    key: 'render',
    schema: z
      .object({
        file: z.string().min(1),
        format: z.enum(RENDER_FORMATS).default('dotenv'),
        scope: z.string().optional(),
      })
      .strict()
      .optional(),
    flag: { decl: '--render <file>', agentOnly: true, custom: true },
    docKey: '`render.file`, `render.format`, `render.scope`',
    flagDoc: '`--render`, `--format`, `--render-scope`',
    dflt: 'format `dotenv`',
    doc: 'Keep a file in sync',
  },
  {
    key: 'render',
    flag: {
      decl: '--format <format>',
      agentOnly: true,
      custom: true,
      choices: RENDER_FORMATS,
      flagDefault: 'dotenv',
      help: 'format of --render',
    },
    dflt: '',
    doc: '',
  },
  {
    key: 'render',
    flag: { decl: '--render-scope <name>', agentOnly: true, custom: true, help: 'render only this scope' },
    dflt: '',
    doc: '',
  },
  {
    key: 'templates',
    schema: z.array(TemplateSchema).default([]),
    flag: {
      decl: '--template <src:dest[:mode]>',
      agentOnly: true,
      repeatable: true,
      value: (v) => (v as string[]).map(parseTemplateFlag),
      help: 'render DEST from the Handlebars template SRC (strict: a missing key is an error), mode default 0600',
    },
    docKey: '`templates[]` (`src`, `dest`, `mode`, `scope`)',
    flagDoc: '`--template SRC:DEST[:MODE]` (repeatable)',
    dflt: 'mode `0600`, all scopes merged',
    doc: "Render files from Handlebars templates (see [Templates](#templates)); flags replace the config file's list",
  },
  {
    key: 'execOnChange',
    schema: execArgv.optional(),
    flag: { decl: '--exec-on-change <command>', agentOnly: true },
    flagDoc: '`--exec-on-change CMD`',
    dflt: '—',
    doc: 'Run after rendered templates changed; a string is split into arguments without a shell, or give an array',
  },
  {
    key: 'execDebounce',
    schema: duration('execDebounce', 0).default('1s'),
    flag: { decl: '--exec-debounce <duration>', agentOnly: true },
    dflt: '`1s`',
    doc: 'Template changes within this window run the command once',
  },
  {
    key: 'once',
    schema: z.boolean().default(false),
    flag: { decl: '--once', agentOnly: true },
    dflt: '`false`',
    doc: 'Sync once, render, exit 0 (1 if the sync failed): init-container mode',
  },
  {
    key: 'logLevel',
    schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    flag: { decl: '--log-level <level>', help: 'fatal|error|warn|info|debug|trace|silent' },
    env: ['PHASE_AGENT_LOG_LEVEL'],
    dflt: '`info`',
    doc: 'pino level',
  },
  {
    key: 'shutdownGrace',
    schema: duration('shutdownGrace', 0).default('10s'),
    flag: { decl: '--shutdown-grace <duration>', agentOnly: true },
    dflt: '`10s`',
    doc: 'Time in-flight requests get on SIGTERM',
  },
  {
    key: 'heapHeadroom',
    // the environment and flags give strings; only plain numbers are accepted (no true -> 1)
    schema: z
      .preprocess(
        (v) => (typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v),
        z.number({ invalid_type_error: 'must be a number of MB' }).min(0, 'must be >= 0 (MB)'),
      )
      .default(0),
    flag: { decl: '--heap-headroom <MB>', numeric: true },
    env: ['PHASE_AGENT_HEAP_HEADROOM'],
    dflt: '`0` (off)',
    doc: 'Opt-in, in MB: run a full garbage collection after each sync that decrypted and whenever the V8 heap grows this much above the last collection. Lowers peak resident memory (see [Performance](#performance))',
  },
] as const satisfies readonly Setting[];

type Settings = typeof SETTINGS;
/** The zod shape of every row that carries a schema, keyed by its key (typed, for AgentConfig). */
type Shape = {
  [S in Settings[number] as S extends { schema: z.ZodTypeAny } ? S['key'] : never]: S extends {
    schema: infer Z;
  }
    ? Z
    : never;
};

function shape(): Shape {
  const out: Record<string, z.ZodTypeAny> = {};
  for (const s of SETTINGS as readonly Setting[]) if (s.schema) out[s.key] = s.schema;
  return out as Shape;
}

/** The Markdown table of docs/agent.md ("Configuration"), from SETTINGS. */
export function settingsMarkdown(): string {
  const rows = ['| Config key | Flag | Environment | Default | Meaning |', '|---|---|---|---|---|'];
  for (const s of SETTINGS as readonly Setting[]) {
    if (!s.doc) continue; // a flag documented on another row (--format, --render-scope)
    const flag =
      s.flagDoc ?? (s.flag ? `\`${flagName(s.flag.decl)}\`${s.flag.repeatable ? ' (repeatable)' : ''}` : '—');
    const env = s.env?.length ? s.env.map((e) => `\`${e}\``).join(', then ') : '—';
    rows.push(`| ${s.docKey ?? `\`${s.key}\``} | ${flag} | ${env} | ${s.dflt} | ${s.doc} |`);
  }
  return rows.join('\n');
}

/** `--refresh <duration>` → `--refresh`. */
export function flagName(decl: string): string {
  return decl.split(/[ ,]/)[0];
}

/** Everything the agent accepts; the same keys are valid in a JSON config file. */
export const AgentConfigSchema = z
  .object(shape())
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

/** Environment variables the agent reads, and the setting each maps to (`scope.<field>` for the first scope). */
export const ENV_VARS: Record<string, string> = Object.fromEntries(
  (SETTINGS as readonly Setting[]).flatMap((s) =>
    (s.env ?? []).map((name) => [name, s.scopeField ? `scope.${s.scopeField}` : s.key]),
  ),
);

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
