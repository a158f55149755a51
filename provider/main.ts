/**
 * Entry point Terraform runs (through the launcher `phase-bridge provider install` writes).
 * Kept tiny on purpose: the cookie check happens before anything heavy loads, and the rest is required lazily,
 * because Terraform launches the provider several times per command (spec §1).
 */
const MAGIC_COOKIE_KEY = 'TF_PLUGIN_MAGIC_COOKIE';
const MAGIC_COOKIE_VALUE = 'd602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2';

export function main(): void {
  if (process.env[MAGIC_COOKIE_KEY] !== MAGIC_COOKIE_VALUE) {
    process.stderr.write(
      'This binary is a plugin. These are not meant to be executed directly.\n' +
        'Please execute the program that consumes these plugins, which will load any plugins automatically.\n' +
        '(phase-bridge: this is the Terraform provider for Phase; install it with `phase-bridge provider install` ' +
        'and run `terraform init` with source = "phase-bridge/phase".)\n',
    );
    process.exit(1);
  }
  const { serve } = require('./plugin/serve') as typeof import('./plugin/serve');
  serve({
    // Resources, the framework and the msgpack codec load on the first RPC, after the handshake line.
    provider: () => (require('./provider') as typeof import('./provider')).providerService(),
  }).catch((err: unknown) => {
    process.stderr.write(
      `[ERROR] phase-bridge provider failed to start: ${(err as Error)?.message ?? String(err)}\n`,
    );
    process.exit(1);
  });
}

if (require.main === module) main();
