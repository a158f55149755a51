import { Command } from 'commander';
import { VERSION } from '../core/version';

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
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram(argv).parseAsync(argv);
}
