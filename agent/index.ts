/** Programmatic API and command line of the phase-bridge sidecar agent (what `bin/` uses). */
export { startAgent, type AgentHandle, type StartOptions } from './agent';
export { configFromOptions, register } from './cli';
export { runCommand, RunError, type RunOptions } from './run';
export { type AgentConfig } from './config';
