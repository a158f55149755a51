/**
 * Builds `descriptor.json` from the `.proto` files (development tool; the provider never parses `.proto` text at
 * run time). Regenerate after editing a `.proto`: `npx tsc -p tsconfig.build.json && node dist/provider/proto/descriptor.js`.
 * A test fails when the committed descriptor differs from what this produces.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const PROTO_FILES = ['tfplugin6.proto', 'health.proto', 'grpc_controller.proto', 'grpc_stdio.proto'];

/** The descriptor JSON text for the protos in `dir`. */
export function buildDescriptor(dir: string): string {
  // Full protobufjs (with the .proto parser) only here, never in the provider's start-up path.
  const protobuf = require('protobufjs') as typeof import('protobufjs');
  const root = new protobuf.Root();
  root.loadSync(
    PROTO_FILES.map((f) => join(dir, f)),
    { keepCase: true },
  );
  return `${JSON.stringify(root.toJSON(), null, 1)}\n`;
}

if (require.main === module) {
  const { protoDir } = require('../plugin/proto') as typeof import('../plugin/proto');
  const dir = process.argv[2] ?? protoDir();
  writeFileSync(join(dir, 'descriptor.json'), buildDescriptor(dir));
  process.stdout.write(`wrote ${join(dir, 'descriptor.json')}\n`);
}
