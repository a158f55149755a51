/** Jest global teardown: stops what global-setup started. */
import type { PostgresCluster } from './postgres';

export default async function globalTeardown(): Promise<void> {
  const g = globalThis as { __phaseBridgePg?: PostgresCluster };
  await g.__phaseBridgePg?.stop();
  g.__phaseBridgePg = undefined;
}
