/**
 * `/v1/env` and `--render` formats, rendered by core/export. A secret that a format cannot express (say, a key
 * that is not a shell name) makes that one format unavailable with a clear error naming the key.
 */
import { ExportError, render } from '../core/export';
import type { RenderFormat } from './config';

export type Rendered = { ok: true; text: string } | { ok: false; message: string };

export function renderFormat(format: RenderFormat, secrets: Array<{ key: string; value: string }>): Rendered {
  try {
    return { ok: true, text: render(format, secrets) };
  } catch (err) {
    if (err instanceof ExportError) return { ok: false, message: err.message };
    throw err;
  }
}
