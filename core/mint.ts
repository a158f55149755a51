/**
 * What a server needs to mint Phase tokens and hand environment keys to principals
 * (spec: phase-protocol.md §2.12–§2.14, phase-rest-api.md §2.3, §12).
 */
import { createHash } from 'node:crypto';
import {
  accountKxKeyPair,
  decryptAsymmetric,
  encryptAsymmetric,
  kxSeedKeyPair,
  randomHex,
  signKeyPair,
  splitSecret,
  wrapKeyShare,
  type KeyPairHex,
  type SignKeyPairHex,
} from './crypto';
import { CryptoError } from './errors';
import { formatPssToken, type AuthType } from './token';

/** The server key pair: `crypto_kx_seed_keypair(SERVER_SECRET)`. */
export function serverKeyPair(serverSecretHex: string): KeyPairHex {
  return kxSeedKeyPair(serverSecretHex);
}

/** An account keyring as Phase stores it server-side: `{"publicKey": ed25519 hex32, "privateKey": ed25519 hex64}`. */
export type AccountKeyring = SignKeyPairHex;

/** A new server-managed (SSK) identity: random Ed25519 keys, the keyring wrapped twice to the server key. */
export function newServerManagedIdentity(serverPublicKey: string): {
  keyring: AccountKeyring;
  identityKey: string;
  serverWrappedKeyring: string;
  serverWrappedRecovery: string;
} {
  const keyring = signKeyPair();
  const json = JSON.stringify({ publicKey: keyring.publicKey, privateKey: keyring.privateKey });
  return {
    keyring,
    identityKey: keyring.publicKey,
    serverWrappedKeyring: encryptAsymmetric(json, serverPublicKey),
    serverWrappedRecovery: encryptAsymmetric(json, serverPublicKey),
  };
}

/** Unwraps a server-wrapped keyring with the server key pair. */
export function unwrapServerKeyring(wrapped: string, server: KeyPairHex): AccountKeyring {
  const parsed = JSON.parse(
    decryptAsymmetric(wrapped, server.privateKey, server.publicKey),
  ) as Partial<AccountKeyring>;
  if (typeof parsed.publicKey !== 'string' || typeof parsed.privateKey !== 'string') {
    throw new CryptoError('server-wrapped keyring is malformed');
  }
  return { publicKey: parsed.publicKey, privateKey: parsed.privateKey };
}

export interface MintRandomness {
  tokenValue?: string;
  wrapKey?: string;
  shareA?: string;
  nonce?: Uint8Array;
}

export interface MintedToken {
  /** The full pss token string: shown once, never stored. */
  token: string;
  /** The 64-hex bearer value (segment 2). Store only its hash. */
  tokenValue: string;
  /** `<Type> <tokenValue>`: the "REST API token". */
  bearerToken: string;
  /** The account's X25519 public key (token segment 3). */
  identityKey: string;
  /** Server-held share, wrapped with the token's wrap key. */
  wrappedKeyShare: string;
}

/**
 * Mints a token for an account's Ed25519 keyring (§2.14 B): X25519 conversion, XOR split, the second share wrapped
 * with a fresh wrap key; share A and the wrap key go into the token and are then forgotten by the server.
 */
export function mintAccountToken(
  kind: 'user' | 'service_account',
  keyring: AccountKeyring,
  rnd: MintRandomness = {},
): MintedToken {
  const kx = accountKxKeyPair(keyring);
  const tokenValue = rnd.tokenValue ?? randomHex(32);
  const wrapKey = rnd.wrapKey ?? randomHex(32);
  const [shareA, shareB] = splitSecret(kx.privateKey, rnd.shareA);
  const wrappedKeyShare = wrapKeyShare(shareB, wrapKey, rnd.nonce);
  const authType: AuthType = kind === 'user' ? 'User' : 'ServiceAccount';
  const token = formatPssToken({
    prefix: kind === 'user' ? 'pss_user' : 'pss_service',
    version: kind === 'user' ? 1 : 2,
    bearer: tokenValue,
    publicKey: kx.publicKey,
    keyShare: shareA,
    wrapKey,
  });
  return {
    token,
    tokenValue,
    bearerToken: `${authType} ${tokenValue}`,
    identityKey: kx.publicKey,
    wrappedKeyShare,
  };
}

/** How tokens are stored: SHA-256 of the bearer value (lowercase hex), so a database leak yields no credential. */
export function tokenHash(tokenValue: string): string {
  return createHash('sha256').update(tokenValue.toLowerCase(), 'utf8').digest('hex');
}
