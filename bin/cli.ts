import { Command } from 'commander';
import { VERSION } from '../core/version';
import { keepTickObjectShape } from '../core/tick-object';

type Register = (program: Command) => void;

/**
 * Each part registers its own subcommands. Only the part that owns the command being run is loaded, so the agent
 * process does not carry the server and provider modules (memory), and `--help` loads them all.
 */
const PARTS: Record<string, () => Register> = {
  quickstart: () => (require('./quickstart') as { register: Register }).register,
  server: () => (require('../server') as { register: Register }).register,
  agent: () => (require('../agent') as { register: Register }).register,
  provider: () => (require('../provider/cli') as { register: Register }).register,
  secrets: () => (require('./secrets') as { register: Register }).register,
};
const COMMAND_PART: Record<string, keyof typeof PARTS> = {
  'agent-probe': 'agent',
  run: 'agent',
  login: 'secrets',
  logout: 'secrets',
  whoami: 'secrets',
};

/**
 * One example for each command's `--help`, kept here so every part's commands show one (the secrets commands carry
 * their own). Keys are command paths.
 */
const EXAMPLES: Record<string, string[]> = {
  quickstart: [
    'npm start',
    'phase-bridge quickstart --data-dir .phase-bridge-2 --port 8081 --agent-port 8788',
  ],
  server: ['phase-bridge server init && phase-bridge server start'],
  'server init': ['phase-bridge server init --data-dir /var/lib/phase-bridge'],
  'server start': [
    'phase-bridge server start --host 0.0.0.0 --port 8080 --trusted-proxy 127.0.0.1',
    'phase-bridge server start --database postgres://pb:pw@db/phase',
  ],
  'server add-member': [
    'phase-bridge server add-member --role Developer --email dev@example.com --token-file dev.token',
  ],
  'server mint-token': ['phase-bridge server mint-token --email owner@example.com --token-file owner.token'],
  agent: [
    'phase-bridge agent --token-file /run/secrets/phase-token --app shop --env Production',
    'phase-bridge agent --auth kubernetes --account-id <service account id> --app shop --env Production',
  ],
  'agent refresh': ['phase-bridge agent refresh'],
  'agent-probe': ['phase-bridge agent-probe --path /readyz --data-dir /run/phase-agent/agent'],
  run: ['phase-bridge run --app shop --env Development -- npm start'],
  provider: ['phase-bridge provider install'],
  'provider install': ['phase-bridge provider install && terraform init'],
};

function addExamples(cmd: Command, path = ''): void {
  for (const sub of cmd.commands) {
    const name = `${path} ${sub.name()}`.trim();
    const lines = EXAMPLES[name];
    if (lines) {
      sub.addHelpText(
        'after',
        `\nExample${lines.length > 1 ? 's' : ''}:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`,
      );
    }
    addExamples(sub, name);
  }
}

/** Builds the `phase-bridge` command line for `argv` (all parts when the command is not known up front). */
export function buildProgram(argv: string[] = []): Command {
  const program = new Command();
  program
    .name('phase-bridge')
    .description(
      'Phase-compatible service accounts, tokens and secrets: server, Terraform provider and sidecar agent.',
    )
    .version(VERSION, '-V, --version', 'print the phase-bridge version')
    // `phase-bridge run -- <command>` passes everything after `--` through untouched.
    .enablePositionalOptions();
  const cmd = argv[2];
  const part = cmd === undefined ? undefined : (COMMAND_PART[cmd] ?? (cmd in PARTS ? cmd : undefined));
  for (const name of part ? [part] : Object.keys(PARTS)) PARTS[name]()(program);
  addExamples(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  // First, before any module's work can trigger a full collection (core/tick-object.ts).
  keepTickObjectShape();
  await buildProgram(argv).parseAsync(argv);
}
