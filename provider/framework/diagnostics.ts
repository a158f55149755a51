/**
 * Diagnostics as Terraform shows them: a summary, a detail a person can act on, and optionally the attribute
 * path in the configuration the problem is about (spec §6.5).
 */

/** One step of an attribute path: an attribute name, a list/set/tuple index, or a map key. */
export type PathStep = string | number | { key: string };
export type AttrPath = PathStep[];

export interface Diagnostic {
  severity: 'ERROR' | 'WARNING';
  summary: string;
  detail: string;
  path?: AttrPath;
}

export function error(summary: string, detail: string, path?: AttrPath): Diagnostic {
  return { severity: 'ERROR', summary, detail, path };
}

export function warning(summary: string, detail: string, path?: AttrPath): Diagnostic {
  return { severity: 'WARNING', summary, detail, path };
}

export function hasErrors(diags: Diagnostic[]): boolean {
  return diags.some((d) => d.severity === 'ERROR');
}

/** `a.b[0]["k"]` for messages. */
export function formatPath(path: AttrPath): string {
  let out = '';
  for (const step of path) {
    if (typeof step === 'string') out += out ? `.${step}` : step;
    else if (typeof step === 'number') out += `[${step}]`;
    else out += `[${JSON.stringify(step.key)}]`;
  }
  return out;
}

/** Thrown inside handlers to stop with diagnostics; the RPC layer turns it into a response. */
export class DiagnosticsError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map((d) => `${d.summary}: ${d.detail}`).join('; '));
    this.name = 'DiagnosticsError';
  }
}

/** Wire form of a diagnostic (tfplugin6.Diagnostic with proto-loader's snake_case fields). */
export interface WireDiagnostic {
  severity: 'ERROR' | 'WARNING';
  summary: string;
  detail: string;
  attribute?: {
    steps: Array<{ attribute_name?: string; element_key_string?: string; element_key_int?: number }>;
  };
}

export function toWire(d: Diagnostic): WireDiagnostic {
  const out: WireDiagnostic = { severity: d.severity, summary: d.summary, detail: d.detail };
  if (d.path && d.path.length > 0) {
    out.attribute = {
      steps: d.path.map((s) =>
        typeof s === 'string'
          ? { attribute_name: s }
          : typeof s === 'number'
            ? { element_key_int: s }
            : { element_key_string: s.key },
      ),
    };
  }
  return out;
}
