/**
 * Phase cryptography, byte-compatible with the official clients (spec: phase-protocol.md §2).
 * Every function is synchronous once `initCrypto()` has resolved; randomness can be injected for test vectors.
 * The primitives come from a backend (core/crypto-backend.ts): native libsodium where it loads, libsodium's
 * WebAssembly build otherwise; both give the same bytes (every vector of §8 runs on both).
 */
import {
  type CryptoBackend,
  type CryptoBackendChoice,
  type CryptoBackendName,
  backendChoice,
  loadBackend,
} from './crypto-backend';
import { CryptoError } from './errors';
import { fromHex, toHex } from './hex';

export type { CryptoBackendChoice, CryptoBackendName } from './crypto-backend';

let backend: CryptoBackend | undefined;
let loading: Promise<void> | undefined;

export interface InitCryptoOptions {
  /**
   * `auto` (native where it loads, else WebAssembly), `native` or `wasm`. Absent: `PHASE_BRIDGE_CRYPTO`, else
   * `auto`. Given, it switches the process's backend (tests run the vectors on both).
   */
  backend?: CryptoBackendChoice;
}

/** Loads the crypto backend. Call (and await) once before any other function in this module. */
export async function initCrypto(opts: InitCryptoOptions = {}): Promise<void> {
  if (opts.backend === undefined) {
    if (backend) return;
    loading ??= loadBackend(backendChoice()).then((b) => {
      backend ??= b;
    });
    try {
      await loading;
    } finally {
      loading = undefined;
    }
    return;
  }
  const b = await loadBackend(backendChoice(opts.backend));
  backend = b;
}

/** The backend in use (`native` or `wasm`), or undefined before `initCrypto()`. */
export function cryptoBackendName(): CryptoBackendName | undefined {
  return backend?.name;
}

function na(): CryptoBackend {
  if (!backend) throw new CryptoError('crypto not initialised: await initCrypto() first');
  return backend;
}

export interface KeyPairHex {
  publicKey: string;
  privateKey: string;
}

const NONCE_BYTES = 24;
const TAG_BYTES = 16;
const utf8 = new TextEncoder();
const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function decodeUtf8(bytes: Uint8Array, what: string): string {
  try {
    return utf8Strict.decode(bytes);
  } catch (cause) {
    throw new CryptoError(`${what} is not valid UTF-8`, { cause });
  }
}

/** 32 random bytes as lowercase hex (seeds, salts, tokens, wrap keys, shares). */
export function randomHex(bytes = 32): string {
  return toHex(na().randomBytes(bytes));
}

// ---- base64 (libsodium's ORIGINAL variant: standard alphabet, padded, canonical) ----

/** Standard padded base64, as libsodium's `to_base64(…, ORIGINAL)`. */
export function toBase64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

/**
 * Decodes base64 exactly as strictly as libsodium's `from_base64(…, ORIGINAL)`: standard alphabet, correct
 * padding, zero trailing bits, nothing else (Node's decoder alone would skip invalid characters). Canonical
 * base64 is the only form that re-encodes to itself, which is the check.
 */
export function fromBase64Strict(text: string, what = 'base64 text'): Uint8Array {
  const buf = Buffer.from(text, 'base64');
  if (buf.toString('base64') !== text) throw new CryptoError(`${what} is not valid base64`);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

// ---- raw symmetric format: ciphertext ‖ tag ‖ nonce (§2.3) ----

/** XChaCha20-Poly1305-IETF, no additional data, 24-byte nonce appended after the ciphertext. */
export function encryptRawBytes(plaintext: Uint8Array, key: Uint8Array, nonce?: Uint8Array): Uint8Array {
  const s = na();
  if (key.length !== 32) throw new CryptoError('symmetric key must be 32 bytes');
  const n = nonce ?? s.randomBytes(NONCE_BYTES);
  if (n.length !== NONCE_BYTES) throw new CryptoError('nonce must be 24 bytes');
  const c = s.aeadEncrypt(plaintext, n, key);
  const out = new Uint8Array(c.length + NONCE_BYTES);
  out.set(c, 0);
  out.set(n, c.length);
  return out;
}

export function decryptRawBytes(blob: Uint8Array, key: Uint8Array): Uint8Array {
  const s = na();
  if (key.length !== 32) throw new CryptoError('symmetric key must be 32 bytes');
  if (blob.length < NONCE_BYTES + TAG_BYTES) throw new CryptoError('ciphertext is too short');
  const n = blob.subarray(blob.length - NONCE_BYTES);
  const c = blob.subarray(0, blob.length - NONCE_BYTES);
  try {
    return s.aeadDecrypt(c, n, key);
  } catch (cause) {
    throw new CryptoError('decryption failed: wrong key or tampered ciphertext', { cause });
  }
}

/** `encryptRaw` of a UTF-8 string. */
export function encryptRaw(plaintext: string, key: Uint8Array, nonce?: Uint8Array): Uint8Array {
  return encryptRawBytes(utf8.encode(plaintext), key, nonce);
}

export function decryptRaw(blob: Uint8Array, key: Uint8Array): string {
  return decodeUtf8(decryptRawBytes(blob, key), 'decrypted text');
}

// ---- key exchange ----

/** `crypto_kx_seed_keypair`: sk = BLAKE2b-256(seed), pk = X25519(sk, 9) (§2.5). */
export function kxSeedKeyPair(seedHex: string): KeyPairHex {
  const kp = na().kxSeedKeyPair(fromHex(seedHex, 'seed', 32));
  return { publicKey: toHex(kp.publicKey), privateKey: toHex(kp.privateKey) };
}

/** A random `crypto_kx_keypair()`. */
export function kxRandomKeyPair(): KeyPairHex {
  const kp = na().kxKeyPair();
  return { publicKey: toHex(kp.publicKey), privateKey: toHex(kp.privateKey) };
}

/** X25519 public key of a private scalar (clamped internally). */
export function x25519PublicKey(privateKeyHex: string): string {
  return toHex(na().scalarmultBase(fromHex(privateKeyHex, 'private key', 32)));
}

export interface SessionKeys {
  rx: string;
  tx: string;
}

export function kxClientSessionKeys(clientPub: string, clientPriv: string, serverPub: string): SessionKeys {
  const cpk = fromHex(clientPub, 'client public key', 32);
  const csk = fromHex(clientPriv, 'client private key', 32);
  const spk = fromHex(serverPub, 'server public key', 32);
  try {
    const k = na().kxClientSessionKeys(cpk, csk, spk);
    return { rx: toHex(k.rx), tx: toHex(k.tx) };
  } catch (cause) {
    if (cause instanceof CryptoError) throw cause;
    throw new CryptoError('key exchange failed (invalid public key)', { cause });
  }
}

export function kxServerSessionKeys(serverPub: string, serverPriv: string, clientPub: string): SessionKeys {
  const spk = fromHex(serverPub, 'server public key', 32);
  const ssk = fromHex(serverPriv, 'server private key', 32);
  const cpk = fromHex(clientPub, 'client public key', 32);
  try {
    const k = na().kxServerSessionKeys(spk, ssk, cpk);
    return { rx: toHex(k.rx), tx: toHex(k.tx) };
  } catch (cause) {
    if (cause instanceof CryptoError) throw cause;
    throw new CryptoError('key exchange failed (invalid public key)', { cause });
  }
}

// ---- asymmetric Phase ciphertext `ph:v1:<epk hex>:<base64>` (§2.4) ----

const PH_V1_RE = /^ph:v1:[0-9a-fA-F]{64}:.+/;

/** The server's `validate_encrypted_string` check (prefix-anchored); empty strings pass upstream, not here. */
export function looksLikePhaseCiphertext(s: unknown): s is string {
  return typeof s === 'string' && PH_V1_RE.test(s);
}

export interface EncryptRandomness {
  /** Ephemeral X25519 secret key (hex); random when absent. */
  ephemeralPrivateKey?: string;
  /** 24-byte AEAD nonce; random when absent. */
  nonce?: Uint8Array;
}

/** Encrypts for a recipient's X25519 public key; the sender is the crypto_kx client. */
export function encryptAsymmetric(
  plaintext: string,
  recipientPubHex: string,
  rnd: EncryptRandomness = {},
): string {
  const s = na();
  const esk = rnd.ephemeralPrivateKey ?? toHex(s.randomBytes(32));
  const epk = x25519PublicKey(esk);
  const { tx } = kxClientSessionKeys(epk, esk, recipientPubHex);
  return `ph:v1:${epk}:${toBase64(encryptRaw(plaintext, fromHex(tx), rnd.nonce))}`;
}

/** A recipient key pair as bytes, for decrypting many `ph:v1` ciphertexts without re-parsing hex each time. */
export interface RecipientKey {
  readonly publicKey: Uint8Array;
  readonly privateKey: Uint8Array;
}

export function recipientKey(privateKeyHex: string, publicKeyHex: string): RecipientKey {
  return {
    privateKey: fromHex(privateKeyHex, 'recipient private key', 32),
    publicKey: fromHex(publicKeyHex, 'recipient public key', 32),
  };
}

/** Opens `ph:v1` ciphertext to its plaintext bytes: one X25519 (crypto_kx server side) and one AEAD. */
export function decryptAsymmetricBytes(ciphertext: string, recipient: RecipientKey): Uint8Array {
  if (typeof ciphertext !== 'string') throw new CryptoError('ciphertext must be a string');
  const parts = ciphertext.split(':');
  if (parts.length !== 4 || parts[0] !== 'ph' || parts[1] !== 'v1') {
    throw new CryptoError('ciphertext is not in the ph:v1:<key>:<base64> format');
  }
  const epk = fromHex(parts[2], 'client public key', 32);
  let rx: Uint8Array;
  try {
    rx = na().kxServerRx(recipient.publicKey, recipient.privateKey, epk);
  } catch (cause) {
    throw new CryptoError('key exchange failed (invalid public key)', { cause });
  }
  return decryptRawBytes(fromBase64Strict(parts[3], 'ciphertext body'), rx);
}

/** Decrypts `ph:v1` ciphertext with the recipient's key pair (the public key is a KDF input). */
export function decryptAsymmetric(
  ciphertext: string,
  recipientPrivHex: string,
  recipientPubHex: string,
): string {
  if (typeof ciphertext !== 'string') throw new CryptoError('ciphertext must be a string');
  const key = {
    publicKey: fromHex(recipientPubHex, 'server public key', 32),
    privateKey: fromHex(recipientPrivHex, 'server private key', 32),
  };
  return decodeUtf8(decryptAsymmetricBytes(ciphertext, key), 'decrypted text');
}

/** `decryptAsymmetric` with the key already in bytes (the read path's hot loop). */
export function decryptAsymmetricWith(ciphertext: string, recipient: RecipientKey): string {
  return decodeUtf8(decryptAsymmetricBytes(ciphertext, recipient), 'decrypted text');
}

/** `decryptAsymmetricWith` over a list: per ciphertext the plaintext, or the CryptoError it threw. */
export function decryptAllWith(ciphertexts: string[], recipient: RecipientKey): Array<string | CryptoError> {
  return ciphertexts.map((c) => {
    try {
      return decryptAsymmetricWith(c, recipient);
    } catch (err) {
      return err instanceof CryptoError ? err : new CryptoError(String(err));
    }
  });
}

// ---- digests (§2.7) ----

/** Blind index of a secret key: BLAKE2b-256 keyed with the UTF-8 bytes of the salt text (unkeyed if empty). */
export function digest(input: string, salt: string): string {
  const key = salt === '' ? null : utf8.encode(salt);
  if (key && key.length > 64) throw new CryptoError('digest salt must be at most 64 bytes');
  return toHex(na().generichash(32, utf8.encode(input), key));
}

/** The key digest Phase stores: the key is uppercased first (§2.7, pitfall 6). */
export function keyDigest(key: string, envSalt: string): string {
  return digest(key.toUpperCase(), envSalt);
}

// ---- identity keys (§2.6) ----

export interface SignKeyPairHex {
  /** Ed25519 public key, 32 bytes hex. */
  publicKey: string;
  /** libsodium Ed25519 secret key: seed ‖ public key, 64 bytes hex. */
  privateKey: string;
}

export function signKeyPair(seedHex?: string): SignKeyPairHex {
  const s = na();
  const kp = seedHex ? s.signSeedKeyPair(fromHex(seedHex, 'seed', 32)) : s.signKeyPair();
  return { publicKey: toHex(kp.publicKey), privateKey: toHex(kp.privateKey) };
}

export function ed25519PublicToX25519(edPubHex: string): string {
  const pk = fromHex(edPubHex, 'Ed25519 public key', 32);
  try {
    return toHex(na().ed25519PkToCurve25519(pk));
  } catch (cause) {
    if (cause instanceof CryptoError) throw cause;
    throw new CryptoError('Ed25519 public key is not a valid curve point', { cause });
  }
}

export function ed25519SecretToX25519(edSecretHex: string): string {
  return toHex(na().ed25519SkToCurve25519(fromHex(edSecretHex, 'Ed25519 secret key', 64)));
}

/** The X25519 key pair an account (user or service account) uses for encryption. */
export function accountKxKeyPair(identity: SignKeyPairHex): KeyPairHex {
  return {
    publicKey: ed25519PublicToX25519(identity.publicKey),
    privateKey: ed25519SecretToX25519(identity.privateKey),
  };
}

// ---- XOR key splitting and the wrapped key share (§2.8, §2.9) ----

export function xorHex(aHex: string, bHex: string): string {
  const a = fromHex(aHex, 'share');
  const b = fromHex(bHex, 'share');
  if (a.length !== b.length) throw new CryptoError('key shares differ in length');
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i] ^ b[i];
  return toHex(out);
}

/** Splits a secret into a random share and the XOR complement: secret = share0 XOR share1. */
export function splitSecret(secretHex: string, share0Hex?: string): [string, string] {
  const share0 = share0Hex ?? randomHex(fromHex(secretHex, 'secret').length);
  return [share0, xorHex(secretHex, share0)];
}

/** `hex(encryptRaw(share1 hex TEXT, wrapKey))`: the AEAD plaintext is the 64-character hex string. */
export function wrapKeyShare(share1Hex: string, wrapKeyHex: string, nonce?: Uint8Array): string {
  return toHex(encryptRaw(share1Hex, fromHex(wrapKeyHex, 'wrap key', 32), nonce));
}

export function unwrapKeyShare(wrappedKeyShareHex: string, wrapKeyHex: string): string {
  const text = decryptRaw(
    fromHex(wrappedKeyShareHex, 'wrapped key share'),
    fromHex(wrapKeyHex, 'wrap key', 32),
  );
  if (!/^[0-9a-fA-F]{64}$/.test(text))
    throw new CryptoError('wrapped key share did not decrypt to a 64-character hex share');
  return text;
}

/** Rebuilds an account's X25519 private key from the token's share and wrap key plus the server-held share (§2.9). */
export function reconstructPrivateKey(
  wrappedKeyShareHex: string,
  keyShare0Hex: string,
  wrapKeyHex: string,
): string {
  return xorHex(keyShare0Hex, unwrapKeyShare(wrappedKeyShareHex, wrapKeyHex));
}

// ---- environment keys (§2.10) ----

export interface EnvironmentKeyMaterial {
  seed: string;
  salt: string;
  publicKey: string;
  privateKey: string;
}

/** Unwraps an environment's seed and salt (wrapped to the account) and derives its key pair. */
export function unwrapEnvironmentKey(
  wrapped: { wrappedSeed: string; wrappedSalt: string },
  account: KeyPairHex,
): EnvironmentKeyMaterial {
  const seed = decryptAsymmetric(wrapped.wrappedSeed, account.privateKey, account.publicKey);
  const salt = decryptAsymmetric(wrapped.wrappedSalt, account.privateKey, account.publicKey);
  const kp = kxSeedKeyPair(seed);
  return { seed, salt, ...kp };
}

/** Wraps an environment's seed and salt (hex text) for a recipient's X25519 public key. */
export function wrapEnvironmentKey(
  env: { seed: string; salt: string },
  recipientPubHex: string,
): { wrappedSeed: string; wrappedSalt: string } {
  return {
    wrappedSeed: encryptAsymmetric(env.seed, recipientPubHex),
    wrappedSalt: encryptAsymmetric(env.salt, recipientPubHex),
  };
}

/** A fresh environment: random seed and salt (hex text) and the derived key pair. */
export function newEnvironmentKey(): EnvironmentKeyMaterial {
  const seed = randomHex(32);
  const salt = randomHex(32);
  return { seed, salt, ...kxSeedKeyPair(seed) };
}

/**
 * Constant-time comparison of two strings (token checks): every UTF-16 unit is compared, without an early exit, so
 * the time depends on the length alone (lengths are not secret). No allocation: the sidecar runs it on every request.
 */
export function constantTimeEqual(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
