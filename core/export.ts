/**
 * Renders secrets for export: dotenv, json, yaml, shell, csv, toml and a single raw value. Every format escapes
 * correctly (unlike Phase's CLI, whose dotenv and toml output does no escaping), so any value survives a round trip.
 * `parseDotenv` reads back what `render('dotenv', ...)` writes. Errors name keys, never values.
 */
import { z } from 'zod';
import { PhaseBridgeError } from './errors';

export const EXPORT_FORMATS = ['dotenv', 'json', 'yaml', 'shell', 'csv', 'toml', 'raw'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];
export const ExportFormatSchema = z.enum(EXPORT_FORMATS);

export interface ExportSecret {
  key: string;
  value: string;
  comment?: string;
  /** Only used to tell duplicates apart in error messages. */
  path?: string;
}

export const ExportSecretSchema = z
  .object({
    key: z.string().min(1),
    value: z.string(),
    comment: z.string().optional(),
    path: z.string().optional(),
  })
  .strict();

export interface RenderOptions {
  /** `raw` only: the key whose value to print. Without it, `raw` needs exactly one secret. */
  key?: string;
  /** Write each secret's comment as `#` lines above it (dotenv, shell, yaml, toml). Default false, like Phase's CLI. */
  comments?: boolean;
}

export type ExportFailure =
  | 'invalid_key'
  | 'invalid_value'
  | 'duplicate_key'
  | 'missing_key'
  | 'ambiguous_key'
  | 'raw_selection'
  | 'unknown_format';

/** A secret cannot be rendered in the requested format. */
export class ExportError extends PhaseBridgeError {
  readonly reason: ExportFailure;
  readonly key?: string;

  constructor(reason: ExportFailure, message: string, key?: string) {
    super(`export_${reason}`, message);
    this.reason = reason;
    this.key = key;
  }
}

/** A dotenv document does not parse; `line` is 1-based. The message never quotes the line (it may hold a secret). */
export class DotenvParseError extends PhaseBridgeError {
  readonly line: number;

  constructor(line: number, message: string) {
    super('dotenv_syntax', `line ${line}: ${message}`);
    this.line = line;
  }
}

/** POSIX shell variable names: what `export NAME=...` accepts. */
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Keys dotenv parsers agree on (the `dotenv` npm package's `[\w.-]+`). */
const DOTENV_KEY = /^[A-Za-z0-9_.-]+$/;
const TOML_BARE_KEY = /^[A-Za-z0-9_-]+$/;
const YAML_PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Plain scalars YAML 1.1 or 1.2 would read as booleans or null; such keys are quoted. */
const YAML_RESERVED = /^(?:y|yes|n|no|true|false|on|off|null)$/i;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATE_G = new RegExp(LONE_SURROGATE.source, 'g');
// eslint-disable-next-line no-control-regex -- matching control characters to escape them is the point
const COMMENT_UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g;

/** Renders secrets in `format`. Multi-line formats end with a newline; `raw` is the value exactly. */
export function render(
  format: ExportFormat,
  secrets: readonly ExportSecret[],
  options: RenderOptions = {},
): string {
  for (const s of secrets) checkSecret(s);
  if (format === 'raw') return renderRaw(secrets, options.key);
  if (format !== 'csv') checkDuplicates(secrets);
  switch (format) {
    case 'dotenv':
      return renderDotenv(secrets, options);
    case 'shell':
      return renderShell(secrets, options);
    case 'json':
      return renderJson(secrets);
    case 'yaml':
      return renderYaml(secrets, options);
    case 'toml':
      return renderToml(secrets, options);
    case 'csv':
      return renderCsv(secrets);
    default:
      throw new ExportError(
        'unknown_format',
        `unknown export format ${JSON.stringify(String(format))}; use one of ${EXPORT_FORMATS.join(', ')}`,
      );
  }
}

function checkSecret(s: ExportSecret): void {
  if (typeof s.key !== 'string' || s.key === '')
    throw new ExportError('invalid_key', 'a secret has an empty key');
  if (LONE_SURROGATE.test(s.key)) {
    throw new ExportError('invalid_key', 'a key contains a lone UTF-16 surrogate (not valid Unicode)');
  }
  if (typeof s.value !== 'string')
    throw new ExportError('invalid_value', `the value of ${s.key} is not a string`, s.key);
  if (s.comment !== undefined && typeof s.comment !== 'string') {
    throw new ExportError('invalid_value', `the comment of ${s.key} is not a string`, s.key);
  }
  if (LONE_SURROGATE.test(s.value)) {
    throw new ExportError(
      'invalid_value',
      `the value of ${s.key} contains a lone UTF-16 surrogate (not valid Unicode)`,
      s.key,
    );
  }
}

function checkDuplicates(secrets: readonly ExportSecret[]): void {
  const seen = new Map<string, ExportSecret>();
  for (const s of secrets) {
    const prior = seen.get(s.key);
    if (prior) {
      const where =
        prior.path !== undefined || s.path !== undefined
          ? ` (paths ${prior.path ?? '/'} and ${s.path ?? '/'})`
          : '';
      throw new ExportError(
        'duplicate_key',
        `key ${s.key} appears more than once${where}; export one path at a time`,
        s.key,
      );
    }
    seen.set(s.key, s);
  }
}

function renderRaw(secrets: readonly ExportSecret[], key: string | undefined): string {
  if (key === undefined) {
    if (secrets.length !== 1) {
      throw new ExportError(
        'raw_selection',
        `raw output needs exactly one secret, got ${secrets.length}; name the key`,
      );
    }
    return secrets[0].value;
  }
  const hits = secrets.filter((s) => s.key === key);
  if (hits.length === 0) throw new ExportError('missing_key', `no secret named ${key}`, key);
  if (hits.length > 1) {
    throw new ExportError(
      'ambiguous_key',
      `${hits.length} secrets are named ${key} (different paths); pick a path`,
      key,
    );
  }
  return hits[0].value;
}

/** `# ` lines for a comment; control characters are shown as `\uXXXX` since no format allows them in comments. */
function commentLines(comment: string | undefined): string {
  if (!comment) return '';
  return comment
    .split(/\r\n|\r|\n/)
    .map((line) => `# ${line.replace(LONE_SURROGATE_G, '\ufffd').replace(COMMENT_UNSAFE, hex4)}`.trimEnd())
    .map((line) => `${line}\n`)
    .join('');
}

function hex4(c: string): string {
  return `\\u${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
}

// --- dotenv ---------------------------------------------------------------------------------------------------

/** Double-quoted dotenv value: `\` `"` `$` escaped, newlines as `\n`/`\r`; everything else literal. */
export function quoteDotenv(value: string): string {
  return `"${value.replace(/[\\"$\n\r]/g, (c) => DOTENV_ESCAPES[c])}"`;
}
const DOTENV_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  $: '\\$',
  '\n': '\\n',
  '\r': '\\r',
};

function renderDotenv(secrets: readonly ExportSecret[], options: RenderOptions): string {
  return secrets
    .map((s) => {
      if (!DOTENV_KEY.test(s.key)) {
        throw new ExportError(
          'invalid_key',
          `key ${JSON.stringify(s.key)} is not a valid dotenv name ([A-Za-z0-9_.-]+)`,
          s.key,
        );
      }
      return `${options.comments ? commentLines(s.comment) : ''}${s.key}=${quoteDotenv(s.value)}\n`;
    })
    .join('');
}

export interface DotenvEntry {
  key: string;
  value: string;
  /** 1-based line where the entry starts. */
  line: number;
}

const DOTENV_UNESCAPES: Record<string, string> = { n: '\n', r: '\r', t: '\t', '"': '"', '\\': '\\', $: '$' };

/**
 * Parses a dotenv document: `KEY=value` lines with optional `export `, blank lines, `#` comments; values unquoted
 * (trimmed, ` #` starts a comment), single-quoted (literal) or double-quoted (escapes `\n \r \t \" \\ \$`; other
 * backslashes are kept). Quoted values may span lines. Entries come back in order; duplicates are kept.
 */
export function parseDotenv(text: string): DotenvEntry[] {
  if (typeof text !== 'string') throw new DotenvParseError(1, 'input must be a string');
  const src = text.startsWith('\ufeff') ? text.slice(1) : text;
  const out: DotenvEntry[] = [];
  let i = 0;
  let line = 1;
  const n = src.length;
  const isBlank = (c: string): boolean => c === ' ' || c === '\t';
  const atEol = (): boolean => i >= n || src[i] === '\n' || src[i] === '\r';
  const skipEol = (): void => {
    if (src[i] === '\r' && src[i + 1] === '\n') i += 2;
    else if (i < n) i += 1;
    line += 1;
  };
  const skipToEol = (): void => {
    while (!atEol()) i += 1;
  };
  /** After a value: only blanks and an optional `# comment` may follow on the line. */
  const finishLine = (entryLine: number): void => {
    while (!atEol() && isBlank(src[i])) i += 1;
    if (!atEol()) {
      if (src[i] !== '#') throw new DotenvParseError(entryLine, 'unexpected text after the closing quote');
      skipToEol();
    }
    if (i < n) skipEol();
  };

  while (i < n) {
    while (i < n && isBlank(src[i])) i += 1;
    if (atEol()) {
      if (i < n) skipEol();
      continue;
    }
    if (src[i] === '#') {
      skipToEol();
      if (i < n) skipEol();
      continue;
    }
    const entryLine = line;
    if (src.startsWith('export', i) && isBlank(src[i + 6] ?? '')) {
      i += 6;
      while (isBlank(src[i] ?? '')) i += 1;
    }
    const keyStart = i;
    while (i < n && /[A-Za-z0-9_.-]/.test(src[i])) i += 1;
    const key = src.slice(keyStart, i);
    if (key === '') throw new DotenvParseError(entryLine, 'expected a key ([A-Za-z0-9_.-]+)');
    while (i < n && isBlank(src[i])) i += 1;
    if (src[i] !== '=') {
      // Not named: a line without '=' may be a pasted secret rather than a key.
      throw new DotenvParseError(entryLine, "expected '=' after the key");
    }
    i += 1;
    while (i < n && isBlank(src[i])) i += 1;

    let value = '';
    const quote = src[i];
    if (quote === '"') {
      i += 1;
      for (;;) {
        if (i >= n) throw new DotenvParseError(entryLine, `unterminated double-quoted value for ${key}`);
        const c = src[i];
        if (c === '"') break;
        if (c === '\\' && i + 1 < n) {
          const next = src[i + 1];
          value += DOTENV_UNESCAPES[next] ?? `\\${next}`;
          if (next === '\n') line += 1;
          i += 2;
          continue;
        }
        if (c === '\n') line += 1;
        value += c;
        i += 1;
      }
      i += 1;
      out.push({ key, value, line: entryLine });
      finishLine(entryLine);
    } else if (quote === "'") {
      i += 1;
      const end = src.indexOf("'", i);
      if (end === -1) throw new DotenvParseError(entryLine, `unterminated single-quoted value for ${key}`);
      value = src.slice(i, end);
      line += (value.match(/\r\n|\r|\n/g) ?? []).length;
      i = end + 1;
      out.push({ key, value, line: entryLine });
      finishLine(entryLine);
    } else {
      const start = i;
      skipToEol();
      const rest = src.slice(start, i);
      const hash = rest.search(/(?:^|[ \t])#/);
      value = (hash === -1 ? rest : rest.slice(0, hash)).trim();
      out.push({ key, value, line: entryLine });
      if (i < n) skipEol();
    }
  }
  return out;
}

// --- shell ----------------------------------------------------------------------------------------------------

/** Single-quotes a value for POSIX sh: everything is literal; `'` becomes `'\''`. */
export function quoteShell(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

function renderShell(secrets: readonly ExportSecret[], options: RenderOptions): string {
  return secrets
    .map((s) => {
      if (!SHELL_NAME.test(s.key)) {
        throw new ExportError(
          'invalid_key',
          `key ${JSON.stringify(s.key)} is not a valid shell variable name ([A-Za-z_][A-Za-z0-9_]*); use another format or rename it`,
          s.key,
        );
      }
      if (s.value.includes('\0')) {
        throw new ExportError(
          'invalid_value',
          `the value of ${s.key} contains a NUL byte, which a shell variable cannot hold`,
          s.key,
        );
      }
      return `${options.comments ? commentLines(s.comment) : ''}export ${s.key}=${quoteShell(s.value)}\n`;
    })
    .join('');
}

// --- json -----------------------------------------------------------------------------------------------------

function renderJson(secrets: readonly ExportSecret[]): string {
  if (secrets.length === 0) return '{}\n';
  // Built by hand so keys keep their order (a JS object would move integer-like keys first).
  const lines = secrets.map((s) => `    ${JSON.stringify(s.key)}: ${JSON.stringify(s.value)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

// --- yaml -----------------------------------------------------------------------------------------------------

const YAML_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  '\0': '\\0',
  '\u0007': '\\a',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\u000b': '\\v',
  '\f': '\\f',
  '\r': '\\r',
  '\u001b': '\\e',
  '\u0085': '\\N',
  '\u2028': '\\L',
  '\u2029': '\\P',
};

/** A YAML double-quoted scalar: one line, escapes for everything outside YAML's printable set and line breaks. */
export function quoteYaml(value: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters to escape them is the point
  return `"${value.replace(/[\\"\u0000-\u001f\u007f-\u009f\u2028\u2029\ufeff\ufffe\uffff]/g, (c) => {
    const named = YAML_ESCAPES[c];
    if (named) return named;
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).toUpperCase().padStart(2, '0')}` : hex4(c);
  })}"`;
}

function yamlKey(key: string): string {
  return YAML_PLAIN_KEY.test(key) && !YAML_RESERVED.test(key) ? key : quoteYaml(key);
}

function renderYaml(secrets: readonly ExportSecret[], options: RenderOptions): string {
  if (secrets.length === 0) return '{}\n';
  return secrets
    .map((s) => {
      const key = yamlKey(s.key);
      const comment = options.comments ? commentLines(s.comment) : '';
      // Implicit keys are limited to 1024 characters; longer ones need the explicit `? key` form.
      if (key.length > 1000) return `${comment}? ${key}\n: ${quoteYaml(s.value)}\n`;
      return `${comment}${key}: ${quoteYaml(s.value)}\n`;
    })
    .join('');
}

// --- toml -----------------------------------------------------------------------------------------------------

const TOML_ESCAPES: Record<string, string> = {
  '\\': '\\\\',
  '"': '\\"',
  '\b': '\\b',
  '\t': '\\t',
  '\n': '\\n',
  '\f': '\\f',
  '\r': '\\r',
};

/** A TOML basic string: `\` `"` and control characters escaped, everything else literal UTF-8. */
export function quoteToml(value: string): string {
  // eslint-disable-next-line no-control-regex -- matching control characters to escape them is the point
  return `"${value.replace(/[\\"\u0000-\u001f\u007f]/g, (c) => TOML_ESCAPES[c] ?? hex4(c))}"`;
}

function renderToml(secrets: readonly ExportSecret[], options: RenderOptions): string {
  return secrets
    .map((s) => {
      const key = TOML_BARE_KEY.test(s.key) ? s.key : quoteToml(s.key);
      return `${options.comments ? commentLines(s.comment) : ''}${key} = ${quoteToml(s.value)}\n`;
    })
    .join('');
}

// --- csv ------------------------------------------------------------------------------------------------------

/** RFC 4180 field: quoted (with `""`) when it holds a comma, quote, CR or LF, or starts or ends with a blank. */
export function quoteCsv(field: string): string {
  return /[",\r\n]|^[ \t]|[ \t]$/.test(field) ? `"${field.replace(/"/g, '""')}"` : field;
}

function renderCsv(secrets: readonly ExportSecret[]): string {
  const rows = ['Key,Value', ...secrets.map((s) => `${quoteCsv(s.key)},${quoteCsv(s.value)}`)];
  return rows.map((r) => `${r}\r\n`).join('');
}
