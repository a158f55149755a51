/**
 * gRPC service definitions from a precompiled protobuf descriptor (`provider/proto/descriptor.json`, generated
 * from the `.proto` files by `descriptor.ts` and kept in sync by a test). Loading JSON with protobufjs' light
 * build takes a fraction of parsing `.proto` text with @grpc/proto-loader, and start-up time matters: Terraform
 * launches the provider several times per command.
 *
 * Message objects follow proto-loader's conventions: snake_case field names, enums as strings, int64 as
 * numbers, defaults filled in, oneof names set, bytes as Buffer.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { Root, type Type, type IConversionOptions } from 'protobufjs/light';

export const TO_OBJECT: IConversionOptions = { longs: Number, enums: String, defaults: true, oneofs: true };

/** Where the .proto files and the descriptor are: next to the sources, or in the repository when running from dist/. */
export function protoDir(): string {
  const candidates = [join(__dirname, '..', 'proto'), join(__dirname, '..', '..', '..', 'provider', 'proto')];
  const found = candidates.find((d) => existsSync(join(d, 'descriptor.json')));
  if (!found)
    throw new Error(`provider/proto/descriptor.json not found (looked in ${candidates.join(', ')})`);
  return found;
}

let cached: Root | undefined;
export function loadRoot(): Root {
  if (!cached) {
    cached = Root.fromJSON(JSON.parse(readFileSync(join(protoDir(), 'descriptor.json'), 'utf8')));
    cached.resolveAll();
  }
  return cached;
}

function codec(t: Type): { serialize: (o: unknown) => Buffer; deserialize: (b: Buffer) => unknown } {
  return {
    serialize: (o) => Buffer.from(t.encode(t.fromObject(o as Record<string, unknown>)).finish()),
    deserialize: (b) => t.toObject(t.decode(b), TO_OBJECT),
  };
}

/** A grpc-js service definition for `service` (e.g. `tfplugin6.Provider`). */
export function serviceDefinition(service: string, root: Root = loadRoot()): grpc.ServiceDefinition {
  const svc = root.lookupService(service);
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const m of svc.methodsArray) {
    m.resolve();
    const req = codec(m.resolvedRequestType!);
    const res = codec(m.resolvedResponseType!);
    def[m.name] = {
      path: `/${service}/${m.name}`,
      requestStream: !!m.requestStream,
      responseStream: !!m.responseStream,
      requestSerialize: req.serialize,
      requestDeserialize: req.deserialize,
      responseSerialize: res.serialize,
      responseDeserialize: res.deserialize,
      originalName: m.name,
    };
  }
  return def;
}
