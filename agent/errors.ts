/**
 * The agent's typed errors. Messages say what to fix and never carry a token or a secret value.
 */
import { PhaseBridgeError } from '../core/errors';

/** One bad setting: where it came from (flag, environment variable or config file key) and what is wrong. */
export interface ConfigIssue {
  setting: string;
  source: string;
  message: string;
}

/** The configuration does not validate. `issues` has one entry per bad setting. */
export class AgentConfigError extends PhaseBridgeError {
  readonly issues: ConfigIssue[];

  constructor(issues: ConfigIssue[]) {
    super(
      'agent_config',
      `invalid agent configuration:\n${issues.map((i) => `  - ${i.setting} (${i.source}): ${i.message}`).join('\n')}`,
    );
    this.issues = issues;
  }
}

/** A configured scope cannot be matched against what the token can access (unknown app or environment). */
export class ScopeResolutionError extends PhaseBridgeError {
  constructor(message: string) {
    super('agent_scope', message);
  }
}

/** The offline snapshot cannot be read or does not belong to the current token. */
export class SnapshotError extends PhaseBridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('agent_snapshot', message, options);
  }
}

/**
 * A path the agent would read or write is not one it can trust: owned by another user, writable by others, a
 * planted symbolic link, or not what it should be (see agent/trust.ts). The message is one line naming the path,
 * what was found and the fix. The CLI exits 2 on it, as on a configuration error.
 */
export class AgentPathError extends PhaseBridgeError {
  readonly path: string;

  constructor(path: string, message: string) {
    super('agent_path', message);
    this.path = path;
  }
}

/**
 * A workload-identity login (agent/auth/login.ts) gave no token: `refused` when the server answered 4xx (the identity
 * is not attached, the JWT or the AWS principal is not trusted, the TTL is too long), otherwise it failed (network,
 * 5xx, 429, a JWT file or AWS credentials that cannot be read). The message never carries a credential.
 */
export class AgentLoginError extends PhaseBridgeError {
  readonly refused: boolean;
  readonly status?: number;
  readonly retryAfterMs?: number;

  constructor(message: string, opts: { refused: boolean; status?: number; retryAfterMs?: number }) {
    super(opts.refused ? 'agent_login_refused' : 'agent_login', message);
    this.refused = opts.refused;
    this.status = opts.status;
    this.retryAfterMs = opts.retryAfterMs;
  }
}
