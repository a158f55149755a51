import type { Construct } from 'constructs';
import { TerraformResource, type TerraformMetaArguments } from './cdktf';
import { compact } from './provider';

/**
 * Base of the hand-written bindings (spec: terraform-plugin-protocol.md §12.4): subclasses pass their Terraform type
 * and map their camelCase config to the provider's snake_case attributes in `attributes()`.
 */
export abstract class PhaseResource<C extends TerraformMetaArguments> extends TerraformResource {
  protected constructor(
    scope: Construct,
    id: string,
    type: string,
    protected readonly config: C,
  ) {
    super(scope, id, {
      terraformResourceType: type,
      terraformGeneratorMetadata: { providerName: 'phase' },
      provider: config.provider,
      dependsOn: config.dependsOn,
      count: config.count,
      lifecycle: config.lifecycle,
      forEach: config.forEach,
    });
  }

  /** The id the provider assigns. */
  get id(): string {
    return this.getStringAttribute('id');
  }

  protected abstract attributes(): Record<string, unknown>;

  protected override synthesizeAttributes(): Record<string, unknown> {
    return compact(this.attributes());
  }
}
