/**
 * The baseline: a bare node:http server answering the same bytes (body and headers) the agent serves.
 * Started as a child process by the benchmark; receives the bodies over IPC.
 */
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';

interface Fixed {
  path: string;
  body: string; // base64
  headers: Record<string, string>;
}

process.on('message', (msg: { routes?: Fixed[]; type?: string }) => {
  if (msg.type === 'rss') {
    process.send?.({ type: 'rss', rss: process.memoryUsage.rss() });
    return;
  }
  if (!msg.routes) return;
  const routes = new Map(
    msg.routes.map((r) => [r.path, { body: Buffer.from(r.body, 'base64'), headers: r.headers }]),
  );
  const server = http.createServer((req, res) => {
    const r = routes.get(req.url ?? '');
    if (!r) {
      res.writeHead(404);
      res.end();
      return;
    }
    res.writeHead(200, { ...r.headers, 'Content-Length': r.body.length });
    res.end(r.body);
  });
  server.listen(0, '127.0.0.1', () => {
    process.send?.({ port: (server.address() as AddressInfo).port });
  });
});
