import { Command } from 'commander';
import { register as registerServer } from '../server/cli';
import { register as registerAgent } from '../agent/cli';
import { register as registerProvider } from '../provider/cli';
import { VERSION } from '../core/version';
import { register as registerQuickstart } from './quickstart';

/** Builds the `phase-bridge` command line; each part registers its own subcommands. */
export function buildProgram(): Command {
  const program = new Command();
  program
    .name('phase-bridge')
    .description(
      'Phase-compatible service accounts, tokens and secrets: server, Terraform provider and sidecar agent.',
    )
    .version(VERSION, '-V, --version', 'print the phase-bridge version')
    // `phase-bridge run -- <command>` passes everything after `--` through untouched.
    .enablePositionalOptions();
  registerQuickstart(program);
  registerServer(program);
  registerAgent(program);
  registerProvider(program);
  return program;
}

export async function main(argv: string[]): Promise<void> {
  await buildProgram().parseAsync(argv);
}
