import type { Command } from 'commander';

/** Registers `phase-bridge provider ...` subcommands. */
export function register(program: Command): void {
  const provider = program
    .command('provider')
    .description('Terraform provider for Phase (plugin protocol 6)');

  provider
    .command('install')
    .description(
      "Install the provider into Terraform's local mirror (~/.terraform.d/plugins) so `terraform init` finds " +
        'source = "phase-bridge/phase" offline',
    )
    .option(
      '--home <dir>',
      'home directory whose .terraform.d/plugins receives the provider (default: $HOME)',
    )
    .option(
      '--provider-version <semver>',
      'provider version to install as (default: the phase-bridge version)',
    )
    .option('--node <path>', 'Node.js executable the launcher runs (default: this one)')
    .action((opts: { home?: string; providerVersion?: string; node?: string }) => {
      const { installProvider } = require('./install') as typeof import('./install');
      const r = installProvider({ home: opts.home, version: opts.providerVersion, node: opts.node });
      process.stdout.write(`Installed ${r.source} ${r.version} at ${r.path}\n`);
      if (!r.entryExists) {
        process.stderr.write(
          'warning: dist/provider/main.js does not exist yet; run `npm run build` before `terraform init`.\n',
        );
      }
      process.stdout.write(
        `\nUse it with:\n  terraform {\n    required_providers {\n      phase = { source = "${r.source}", version = "${r.version}" }\n    }\n  }\n`,
      );
    });
}
