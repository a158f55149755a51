import type { Command } from 'commander';

/** Registers this part's subcommands on the `phase-bridge` program (filled in as the part lands). */
export function register(_program: Command): void {}
