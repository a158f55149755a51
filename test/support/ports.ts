import { createServer } from 'node:net';

/**
 * Ports are drawn below Linux's default ephemeral range (32768–60999). A port the kernel picked is an ephemeral one,
 * and a test that binds it a minute later (the quickstart deploys with terraform first) can find it taken by any
 * outgoing connection on the machine in between. Outgoing connections never take ports below the range.
 */
const LOW = 20000;
const HIGH = 32000;

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.once('error', () => resolve(undefined));
    srv.listen(port, '127.0.0.1', () => {
      const addr = srv.address();
      const bound = typeof addr === 'object' && addr ? addr.port : undefined;
      srv.close(() => resolve(bound));
    });
  });
}

/** A free TCP port on 127.0.0.1, below the ephemeral range when one is free there (else one the kernel picks). */
export async function freePort(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const port = await tryListen(LOW + Math.floor(Math.random() * (HIGH - LOW)));
    if (port !== undefined) return port;
  }
  const port = await tryListen(0);
  if (port === undefined) throw new Error('no free TCP port on 127.0.0.1');
  return port;
}
