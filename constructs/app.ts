import type { Construct } from 'constructs';
import { Fn, type TerraformMetaArguments } from './cdktf';
import { PhaseResource } from './resource';

export interface PhaseAppConfig extends TerraformMetaArguments {
  /** App name, at most 64 characters. */
  readonly name: string;
  readonly description?: string;
  /** Environments created with the app, in order; default `Development`, `Staging`, `Production`. */
  readonly environments?: string[];
}

/** `phase_app`: a server-side-encrypted app and its environments. */
export class PhaseApp extends PhaseResource<PhaseAppConfig> {
  static readonly tfResourceType = 'phase_app';

  constructor(scope: Construct, id: string, config: PhaseAppConfig) {
    super(scope, id, PhaseApp.tfResourceType, config);
  }

  get name(): string {
    return this.getStringAttribute('name');
  }

  /** The id of one of the app's environments, by name (resolved by Terraform at apply time). */
  environmentId(name: string): string {
    return Fn.lookup(this.interpolationForAttribute('environment_ids'), name) as string;
  }

  protected attributes(): Record<string, unknown> {
    return {
      name: this.config.name,
      description: this.config.description,
      environments: this.config.environments,
    };
  }
}

export interface PhaseEnvironmentConfig extends TerraformMetaArguments {
  readonly appId: string;
  /** Letters, digits, `-` and `_`, at most 64 characters. */
  readonly name: string;
}

/** `phase_environment`: a custom environment in an app. */
export class PhaseEnvironment extends PhaseResource<PhaseEnvironmentConfig> {
  static readonly tfResourceType = 'phase_environment';

  constructor(scope: Construct, id: string, config: PhaseEnvironmentConfig) {
    super(scope, id, PhaseEnvironment.tfResourceType, config);
  }

  protected attributes(): Record<string, unknown> {
    return { app_id: this.config.appId, name: this.config.name };
  }
}
