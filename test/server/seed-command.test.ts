/**
 * The command from Phase's announcement, verbatim (issue 15): `curl -G <host>/v1/secrets -H "Authorization: Bearer
 * ServiceAccount {token}" -d app_id=... -d env=development`, with the REST token that token creation returns, against
 * the real server. Run with the real curl binary, as a reader of the README would.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../support/server';
import { caller, createApp, createSa } from './helpers';

const run = promisify(execFile);

describe('the seed command', () => {
  let srv: TestServer;
  afterAll(async () => {
    await srv?.close();
  });

  test('curl -G /v1/secrets without the trailing slash answers the secrets', async () => {
    await run('curl', ['--version']).catch(() => {
      throw new Error(
        'curl is not on PATH: this test runs the README command with the real curl (apt-get install curl)',
      );
    });
    srv = await startTestServer({ store: 'sqlite' });
    const owner = caller(srv, srv.ownerToken);
    const { app, envs } = await createApp(owner);
    await owner('POST', `/v1/secrets/?app_id=${app.id}&env=Development`, {
      secrets: [{ key: 'GREETING', value: 'hello' }],
    });
    const sa = await createSa(owner, 'seed');
    await owner('PUT', `/v1/service-accounts/${sa.id}/access/`, {
      apps: [{ id: app.id, environments: [envs.Development.id] }],
    });
    // The REST token is what `POST /v1/service-accounts/:id/tokens/` answers as bearerToken: "ServiceAccount <hex>".
    const bearer = sa.body.initialToken.bearerToken as string;
    const token = bearer.split(' ')[1];
    const { stdout } = await run('curl', [
      '-sS',
      '-G',
      `${srv.url}/v1/secrets`,
      '-H',
      `Authorization: Bearer ServiceAccount ${token}`,
      '-d',
      `app_id=${app.id}`,
      '-d',
      'env=development',
    ]);
    const body = JSON.parse(stdout) as Array<{ key: string; value: string }>;
    expect(body.map((s) => [s.key, s.value])).toEqual([['GREETING', 'hello']]);
  });
});
