import { Construct } from 'constructs';
import { Fn, type TerraformResource } from './cdktf';
import { app as l1app, environment as l1env, secret as l1secret } from './provider';
import { idPart, validate } from './validation';

/** The environments Phase creates with a new app. */
export const DEFAULT_ENVIRONMENTS = ['Development', 'Staging', 'Production'] as const;

export interface PhaseAppProps {
  /** App name, at most 64 characters. */
  readonly name: string;
  /**
   * What the app is for.
   * @default no description
   */
  readonly description?: string;
  /**
   * Environments created with the app, in order. Add more later with `addEnvironment`.
   * @default Development, Staging and Production
   */
  readonly environments?: string[];
}

/** One environment of a `PhaseApp`, by name; `id` resolves when Terraform applies. */
export interface PhaseEnvironmentRef {
  readonly app: PhaseApp;
  readonly name: string;
  /** The environment id (a token until apply). */
  readonly id: string;
  /** What grants on this environment must wait for (the app, or the environment's own resource). */
  readonly dependable: TerraformResource;
}

/** A secret's value: a plain value (sensitive, kept in state), or a write-only one (Terraform >= 1.11). */
export interface PhaseSecretProps {
  /**
   * The value. It is sensitive in plans but stored in Terraform state; prefer `valueWo` for credentials. A literal
   * Phase reference must be written `$${KEY}` so that Terraform does not interpolate it.
   * @default none: give `value` or `valueWo`
   */
  readonly value?: string;
  /**
   * A write-only value (Terraform >= 1.11): sent to Phase, never stored in plan or state. Bump `valueWoVersion` to
   * push a new one.
   * @default none: give `value` or `valueWo`
   */
  readonly valueWo?: string;
  /**
   * Version of `valueWo`; change it to send a new write-only value.
   * @default 1 when `valueWo` is given
   */
  readonly valueWoVersion?: number;
  /**
   * Folder path of the secret.
   * @default "/"
   */
  readonly path?: string;
  /** @default no comment */
  readonly comment?: string;
  /** Tag names. @default no tags */
  readonly tags?: string[];
}

export interface PhaseSecretsOptions {
  /** Folder path of every secret in the batch. @default "/" */
  readonly path?: string;
  /** Tag names for every secret in the batch. @default no tags */
  readonly tags?: string[];
  /** Store the values write-only (Terraform >= 1.11), at this version. @default plain values */
  readonly writeOnlyVersion?: number;
}

/**
 * A Phase app (server-side encrypted) with its environments and secrets.
 *
 * ```ts
 * const app = new PhaseApp(stack, 'payments', { name: 'payments' });
 * app.addSecrets('Production', { API_URL: 'https://api.example.com' }, { path: '/api' });
 * app.addSecret('Production', 'DB_PASSWORD', { valueWo: process.env.DB_PASSWORD!, valueWoVersion: 1 });
 * ```
 */
export class PhaseApp extends Construct {
  /** The level-1 `phase_app` resource. */
  readonly resource: l1app.App;
  private readonly envNames: string[];
  private readonly extra = new Map<string, l1env.Environment>();
  private readonly secretIds = new Set<string>();
  private readonly requested = new Set<string>();

  constructor(scope: Construct, id: string, props: PhaseAppProps) {
    super(scope, id);
    this.envNames = [...(props.environments ?? DEFAULT_ENVIRONMENTS)];
    this.resource = new l1app.App(this, 'app', {
      name: props.name,
      description: props.description,
      environments: props.environments,
    });
    validate(this, () => {
      const problems: string[] = [];
      if (props.name.length === 0 || props.name.length > 64)
        problems.push('name must be 1 to 64 characters.');
      const seen = new Set<string>();
      for (const e of this.environmentNames) {
        if (seen.has(e.toLowerCase())) problems.push(`environment '${e}' is listed twice.`);
        seen.add(e.toLowerCase());
      }
      for (const name of this.requested) {
        if (!this.hasEnvironment(name)) {
          problems.push(
            `has no environment '${name}'; it has ${this.environmentNames.join(', ')}. ` +
              `Add it to 'environments' or call addEnvironment('${name}').`,
          );
        }
      }
      return problems;
    });
  }

  /** The app id (a token until apply). */
  get id(): string {
    return this.resource.id;
  }

  /** The app name. */
  get name(): string {
    return this.resource.name;
  }

  /** Every environment name the app will have: those created with it, then those added. */
  get environmentNames(): string[] {
    return [...this.envNames, ...this.extra.keys()];
  }

  /** True when the app has an environment of this name (Phase matches names case-insensitively). */
  hasEnvironment(name: string): boolean {
    return this.environmentNames.some((e) => e.toLowerCase() === name.toLowerCase());
  }

  /**
   * One environment by name. A name the app does not have is reported when the stack is synthesised, naming the
   * environments it does have.
   */
  environment(name: string): PhaseEnvironmentRef {
    const own = [...this.extra.entries()].find(([n]) => n.toLowerCase() === name.toLowerCase());
    if (own) return { app: this, name: own[0], id: own[1].id, dependable: own[1] };
    this.requested.add(name);
    return {
      app: this,
      name,
      id: Fn.lookup(this.resource.interpolationForAttribute('environment_ids'), name) as string,
      dependable: this.resource,
    };
  }

  /** Adds a custom environment (`phase_environment`) after the app's own. */
  addEnvironment(name: string): PhaseEnvironmentRef {
    if (this.hasEnvironment(name)) {
      throw new Error(`PhaseApp '${this.node.path}': environment '${name}' already exists.`);
    }
    const env = new l1env.Environment(this, `env-${idPart(name)}`, { appId: this.id, name });
    this.extra.set(name, env);
    return { app: this, name, id: env.id, dependable: env };
  }

  /** Adds one secret to an environment, returning its level-1 `phase_secret` resource. */
  addSecret(environment: string, key: string, props: PhaseSecretProps): l1secret.Secret {
    const env = this.environment(environment);
    const path = props.path ?? '/';
    const id = `secret-${idPart(environment)}-${idPart(path)}-${idPart(key)}`;
    if (this.secretIds.has(id)) {
      throw new Error(
        `PhaseApp '${this.node.path}': secret '${key}' at '${path}' in '${environment}' is declared twice.`,
      );
    }
    this.secretIds.add(id);
    const wo = props.valueWo !== undefined;
    const s = new l1secret.Secret(this, id, {
      appId: this.id,
      env: env.name,
      key,
      value: props.value,
      valueWo: props.valueWo,
      valueWoVersion: wo ? (props.valueWoVersion ?? 1) : props.valueWoVersion,
      path: props.path,
      comment: props.comment,
      tags: props.tags,
      dependsOn: env.dependable === this.resource ? undefined : [env.dependable],
    });
    validate(s, () => {
      const problems: string[] = [];
      if ((props.value === undefined) === (props.valueWo === undefined)) {
        problems.push(`give exactly one of 'value' or 'valueWo' for secret '${key}'.`);
      }
      if (props.valueWoVersion !== undefined && !wo) {
        problems.push(`'valueWoVersion' of secret '${key}' only has an effect with 'valueWo'.`);
      }
      return problems;
    });
    return s;
  }

  /** Adds several plain secrets to an environment: `{ KEY: value }`. */
  addSecrets(
    environment: string,
    secrets: Record<string, string>,
    options: PhaseSecretsOptions = {},
  ): l1secret.Secret[] {
    return Object.entries(secrets).map(([key, value]) =>
      this.addSecret(environment, key, {
        ...(options.writeOnlyVersion !== undefined
          ? { valueWo: value, valueWoVersion: options.writeOnlyVersion }
          : { value }),
        path: options.path,
        tags: options.tags,
      }),
    );
  }
}
