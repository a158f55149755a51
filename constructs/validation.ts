import type { Construct, IValidation } from 'constructs';

/**
 * Registers a synth-time check on `scope`: `check` returns the problems it finds, each a sentence that says what is
 * wrong and how to fix it. cdktf reports them, prefixed with the construct's path, and stops the synth.
 */
export function validate(scope: Construct, check: () => string[]): void {
  const v: IValidation = {
    validate: () => check().map((m) => `${scope.constructor.name} '${scope.node.path}': ${m}`),
  };
  scope.node.addValidation(v);
}

/** A Terraform-safe piece of a construct id. */
export function idPart(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]+/g, '_').replace(/^_+|_+$/g, '') || 'root';
}
