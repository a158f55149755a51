import { CryptoError } from './errors';

const HEX_RE = /^(?:[0-9a-fA-F]{2})*$/;

/** Decodes hex (either case); `what` names the value in the error without echoing it. */
export function fromHex(hex: string, what = 'value', expectedBytes?: number): Uint8Array {
  if (typeof hex !== 'string' || !HEX_RE.test(hex)) throw new CryptoError(`${what} is not valid hex`);
  if (expectedBytes !== undefined && hex.length !== expectedBytes * 2) {
    throw new CryptoError(`${what} must be ${expectedBytes} bytes (${expectedBytes * 2} hex characters)`);
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}

/** Lowercase hex, as Phase emits. */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

export function isHex64(s: unknown): s is string {
  return typeof s === 'string' && /^[0-9a-fA-F]{64}$/.test(s);
}
