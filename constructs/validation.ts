import type { Construct, IValidation } from 'constructs';
import type { TerraformResource } from './cdktf';

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

/**
 * A resource's plain address (`phase_app.app_1A2B`), as `depends_on` needs it: cdktf's own helper for this is not
 * exported, and the `fqn` token would render as an interpolation, which Terraform refuses there.
 */
export function address(r: TerraformResource): string {
  return `${r.terraformResourceType}.${r.friendlyUniqueId}`;
}
