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

/** The upstream rejected the token (403 on `/secrets/tokens/`, 401 elsewhere): the scope fails closed. */
export class TokenRejectedError extends PhaseBridgeError {
  readonly status: number;

  constructor(status: number, message: string) {
    super('agent_token_rejected', message);
    this.status = status;
  }
}

/** The agent's own call budget or the upstream's 429 forbids an upstream call right now. */
export class BudgetExhaustedError extends PhaseBridgeError {
  readonly retryAtMs: number;

  constructor(retryAtMs: number, message: string) {
    super('agent_budget', message);
    this.retryAtMs = retryAtMs;
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
