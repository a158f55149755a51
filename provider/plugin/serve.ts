/**
 * Serves a provider over go-plugin's gRPC transport (spec §1–§4, §11): Unix socket, AutoMTLS with a certificate
 * made at start, the handshake line on stdout, gRPC health ("plugin" is SERVING), GRPCController.Shutdown and
 * GRPCStdio. Only this module touches @grpc/grpc-js, so the import cost is paid once, here.
 */
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as grpc from '@grpc/grpc-js';
import { generateCert } from './cert';
import { serviceDefinition } from './proto';

export const CORE_PROTOCOL_VERSION = 1;
export const APP_PROTOCOL_VERSION = 6;

type Handler = (req: Record<string, unknown>) => Promise<Record<string, unknown>>;

function unary(
  name: string,
  table: () => Record<string, Handler>,
): grpc.handleUnaryCall<Record<string, unknown>, Record<string, unknown>> {
  return (call, callback) => {
    const fn = table()[name];
    if (!fn) {
      callback({ code: grpc.status.UNIMPLEMENTED, details: `${name} is not implemented by this provider` });
      return;
    }
    fn(call.request).then(
      (res) => callback(null, res),
      // Handlers turn errors into diagnostics; reaching here is a provider bug, still never a crash.
      (err: unknown) =>
        callback({ code: grpc.status.INTERNAL, details: String((err as Error)?.message ?? err) }),
    );
  };
}

function log(level: 'DEBUG' | 'INFO' | 'WARN' | 'ERROR', msg: string): void {
  process.stderr.write(`[${level}] phase-bridge provider: ${msg}\n`);
}

export interface ServeOptions {
  /**
   * Builds the tfplugin6.Provider handlers, keyed by RPC name. Called on the first RPC, after the handshake, so
   * loading the resources never delays the handshake line.
   */
  provider: () => Record<string, Handler>;
}

/** Picks the protocol version to report: 6 when the client accepts it (spec §1). */
export function negotiateVersion(env: string | undefined): number {
  const offered = (env ?? '')
    .split(',')
    .map((s) => Number(s.trim()))
    .filter((n) => Number.isInteger(n));
  return offered.length === 0 || offered.includes(APP_PROTOCOL_VERSION)
    ? APP_PROTOCOL_VERSION
    : APP_PROTOCOL_VERSION;
}

/** Starts the plugin server and prints the handshake line. Resolves once serving. */
export async function serve(opts: ServeOptions): Promise<void> {
  const clientCertPem = process.env.PLUGIN_CLIENT_CERT;
  const cert = clientCertPem ? generateCert() : undefined;
  const creds = cert
    ? grpc.ServerCredentials.createSsl(
        Buffer.from(clientCertPem!),
        [{ cert_chain: Buffer.from(cert.certPem), private_key: Buffer.from(cert.keyPem) }],
        true,
      )
    : // No client certificate means Terraform runs with TF_DISABLE_PLUGIN_TLS: plaintext, as go-plugin does.
      grpc.ServerCredentials.createInsecure();

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 256 * 1024 * 1024 });
  let table: Record<string, Handler> | undefined;
  const getTable = (): Record<string, Handler> => (table ??= opts.provider());
  const providerService = serviceDefinition('tfplugin6.Provider');
  const handlers: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(providerService)) handlers[name] = unary(name, getTable);
  server.addService(providerService, handlers);

  server.addService(serviceDefinition('grpc.health.v1.Health'), {
    Check: (call: grpc.ServerUnaryCall<{ service: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      const svc = call.request.service;
      cb(null, { status: svc === 'plugin' || svc === '' ? 'SERVING' : 'SERVICE_UNKNOWN' });
    },
  });

  const sockDir = process.env.PLUGIN_UNIX_SOCKET_DIR || tmpdir();
  const sockPath = join(sockDir, `plugin${randomBytes(8).toString('hex')}`);
  const stdioStreams = new Set<grpc.ServerWritableStream<unknown, unknown>>();
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    for (const s of stdioStreams) s.end();
    rmSync(sockPath, { force: true });
    // Let in-flight replies (the Shutdown answer itself) leave; Terraform kills the process after 2 s anyway.
    const force = setTimeout(() => {
      server.forceShutdown();
      process.exit(0);
    }, 1000);
    server.tryShutdown(() => {
      clearTimeout(force);
      process.exit(0);
    });
  };

  server.addService(serviceDefinition('plugin.GRPCController'), {
    Shutdown: (_call: unknown, cb: grpc.sendUnaryData<unknown>) => {
      log('INFO', 'shutdown requested');
      cb(null, {});
      setTimeout(stop, 10);
    },
  });
  server.addService(serviceDefinition('plugin.GRPCStdio'), {
    // Output goes to stderr directly, so the stream carries nothing; it stays open until shutdown.
    StreamStdio: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      stdioStreams.add(call);
      call.on('cancelled', () => stdioStreams.delete(call));
    },
  });

  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix:${sockPath}`, creds, (err) => (err ? reject(err) : resolve()));
  });
  process.on('exit', () => rmSync(sockPath, { force: true }));
  // Terraform handles Ctrl-C itself and sends StopProvider; go-plugin servers ignore SIGINT.
  process.on('SIGINT', () => log('DEBUG', 'interrupt ignored; waiting for Terraform'));
  process.on('SIGTERM', stop);
  // If Terraform dies without calling Shutdown (SIGKILL, crash), the process is re-parented: exit then.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) stop();
  }, 2000).unref();

  const version = negotiateVersion(process.env.PLUGIN_PROTOCOL_VERSIONS);
  const certField = cert ? cert.der.toString('base64').replace(/=+$/, '') : '';
  process.stdout.write(`${CORE_PROTOCOL_VERSION}|${version}|unix|${sockPath}|grpc|${certField}\n`);
}
