/**
 * Typed errors shared by every part. `code` is stable and machine-readable; the message tells a person what to fix.
 * Messages never contain secret material (tokens, keys, values).
 */
export class PhaseBridgeError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** Which segment of a `pss_...` token string is wrong. */
export type TokenPart =
  'shape' | 'prefix' | 'version' | 'token' | 'publicKey' | 'keyShare' | 'wrapKey' | 'header';

/** A token string or Authorization header that does not parse. Never echoes the token. */
export class TokenFormatError extends PhaseBridgeError {
  readonly part: TokenPart;

  constructor(part: TokenPart, message: string) {
    super('token_format', message);
    this.part = part;
  }
}

/** Decryption or key handling failed (wrong key, tampered ciphertext, malformed encoding). */
export class CryptoError extends PhaseBridgeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('crypto', message, options);
  }
}
