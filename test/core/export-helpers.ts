/**
 * Independent readers for the export tests: a real shell, an RFC 4180 CSV reader and a TOML reader for the subset
 * the exporter writes (`key = "basic string"` lines). They follow the format specs, not the exporter's code.
 */
import { spawnSync } from 'node:child_process';

/**
 * Evaluates `script` in a real shell the way users do (`eval "$(phase-bridge ... --format shell)"`) and returns
 * the variables' values, read back through printf with NUL separators.
 */
export function shellRoundTrip(shell: 'sh' | 'bash', script: string, keys: readonly string[]): string[] {
  const printf = `printf '%s\\0' ${keys.map((k) => `"$${k}"`).join(' ')}`;
  const r = spawnSync(shell, ['-c', `eval "$PB_EXPORTS" || exit 97; ${keys.length ? printf : ':'}`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', PB_EXPORTS: script, LC_ALL: 'C' },
    maxBuffer: 64 * 1024 * 1024,
  });
  if (r.status !== 0)
    throw new Error(`${shell} exited with ${r.status}: ${r.stderr.toString('utf8').slice(0, 200)}`);
  const parts = r.stdout.toString('utf8').split('\0');
  parts.pop(); // after the last separator
  return parts;
}

/** RFC 4180 reader: CRLF (or LF) record breaks, `"` quoting with `""` escapes, line breaks allowed inside quotes. */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  let quoted = false;
  let fieldStarted = false;
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
      } else if (c === '"') {
        quoted = false;
        i += 1;
        if (i < text.length && text[i] !== ',' && text[i] !== '\r' && text[i] !== '\n') {
          throw new Error(`csv: text after a closing quote at offset ${i}`);
        }
      } else {
        field += c;
        i += 1;
      }
      continue;
    }
    if (c === '"' && !fieldStarted) {
      quoted = true;
      fieldStarted = true;
      i += 1;
    } else if (c === '"') {
      throw new Error(`csv: bare quote inside an unquoted field at offset ${i}`);
    } else if (c === ',') {
      row.push(field);
      field = '';
      fieldStarted = false;
      i += 1;
    } else if (c === '\r' || c === '\n') {
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      fieldStarted = false;
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
    } else {
      field += c;
      fieldStarted = true;
      i += 1;
    }
  }
  if (quoted) throw new Error('csv: unterminated quoted field');
  if (fieldStarted || row.length > 0) {
    row.push(field);
    rows.push(row);
  }
  return rows;
}

/** Reads a TOML basic string starting at `text[start] === '"'`; returns the value and the index after it. */
function readTomlBasic(text: string, start: number): [string, number] {
  let out = '';
  let i = start + 1;
  for (;;) {
    if (i >= text.length) throw new Error('toml: unterminated string');
    const c = text[i];
    const code = c.charCodeAt(0);
    if (c === '"') return [out, i + 1];
    if ((code < 0x20 && c !== '\t') || code === 0x7f) {
      throw new Error(`toml: raw control character U+${code.toString(16)} in a basic string`);
    }
    if (c !== '\\') {
      out += c;
      i += 1;
      continue;
    }
    const e = text[i + 1];
    const simple: Record<string, string> = {
      b: '\b',
      t: '\t',
      n: '\n',
      f: '\f',
      r: '\r',
      '"': '"',
      '\\': '\\',
    };
    if (e in simple) {
      out += simple[e];
      i += 2;
    } else if (e === 'u' || e === 'U') {
      const len = e === 'u' ? 4 : 8;
      const hex = text.slice(i + 2, i + 2 + len);
      if (!/^[0-9A-Fa-f]+$/.test(hex) || hex.length !== len) throw new Error('toml: bad unicode escape');
      const cp = parseInt(hex, 16);
      if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        throw new Error('toml: escape is not a Unicode scalar');
      out += String.fromCodePoint(cp);
      i += 2 + len;
    } else {
      throw new Error(`toml: invalid escape \\${e}`);
    }
  }
}

/** A TOML document of top-level `key = "value"` pairs (bare or quoted keys), comments and blank lines. */
export function parseTomlBasicTable(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const skipWs = () => {
    while (text[i] === ' ' || text[i] === '\t') i += 1;
  };
  while (i < text.length) {
    skipWs();
    if (text[i] === '\n' || (text[i] === '\r' && text[i + 1] === '\n')) {
      i += text[i] === '\n' ? 1 : 2;
      continue;
    }
    if (text[i] === '#') {
      while (i < text.length && text[i] !== '\n') {
        // TOML forbids control characters other than tab in comments too.
        const code = text.charCodeAt(i);
        if ((code < 0x20 && code !== 0x09) || code === 0x7f)
          throw new Error('toml: control character in a comment');
        i += 1;
      }
      continue;
    }
    let key: string;
    if (text[i] === '"') {
      [key, i] = readTomlBasic(text, i);
    } else {
      const m = /^[A-Za-z0-9_-]+/.exec(text.slice(i));
      if (!m) throw new Error(`toml: expected a key at offset ${i}`);
      key = m[0];
      i += key.length;
    }
    skipWs();
    if (text[i] !== '=') throw new Error(`toml: expected '=' at offset ${i}`);
    i += 1;
    skipWs();
    if (text[i] !== '"') throw new Error(`toml: expected a basic string at offset ${i}`);
    let value: string;
    [value, i] = readTomlBasic(text, i);
    skipWs();
    if (i < text.length && text[i] !== '\n') throw new Error(`toml: expected end of line at offset ${i}`);
    if (Object.prototype.hasOwnProperty.call(out, key)) throw new Error('toml: duplicate key');
    Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}
