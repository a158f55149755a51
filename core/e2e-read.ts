/**
 * The end-to-end read, once, for every reader (`PhaseSession` and the sidecar agent): open the account from the
 * token and the server's wrapped key share, verify the rebuilt public key against the token's, unwrap each
 * environment's seed and salt and verify the derived public key against the server's `identity_key`, decrypt
 * secrets (spec: phase-protocol.md §2.4, §2.9, §2.10, §6.1).
 *
 * A server answer that does not hold together (a wrapped share made for another token, a forged or swapped
 * environment key) is refused with a `KeyVerificationError` naming the check that failed; messages never carry a
 * key, a share or a value.
 */
import {
  type KeyPairHex,
  type RecipientKey,
  constantTimeEqual,
  decryptAllWith,
  decryptAsymmetric,
  decryptAsymmetricWith,
  kxSeedKeyPair,
  looksLikePhaseCiphertext,
  reconstructPrivateKey,
  recipientKey,
  x25519PublicKey,
} from './crypto';
import type { DecryptPool } from './crypto-worker';
import { CryptoError } from './errors';
import type { BootstrapEnvironmentKey, EncryptedSecret } from './schemas';

/** Which check refused the server's answer. */
export type KeyVerificationCheck =
  /** The wrapped key share does not open with the token's wrap key (made for another token, or tampered). */
  | 'wrapped_key_share'
  /** The account key rebuilt from token share and server share is not the token's public key. */
  | 'account_public_key'
  /** An environment's wrapped seed or salt does not open with the account key. */
  | 'environment_key'
  /** The key derived from an environment's seed is not the server's `identity_key` for it. */
  | 'identity_key';

/** The server's answer fails an end-to-end key check: nothing from it is used. A `CryptoError`. */
export class KeyVerificationError extends CryptoError {
  override readonly code = 'key_verification';
  readonly check: KeyVerificationCheck;
  /** The environment concerned (environment checks only). */
  readonly environmentId?: string;

  constructor(
    check: KeyVerificationCheck,
    message: string,
    options: { cause?: unknown; environmentId?: string } = {},
  ) {
    super(message, { cause: options.cause });
    this.check = check;
    this.environmentId = options.environmentId;
  }
}

/** What `openAccount` needs from a `pss_` token (a `PssToken` fits). */
export interface AccountTokenMaterial {
  publicKey: string;
  keyShare: string;
  wrapKey: string;
}

/**
 * The account's X25519 key pair: the token's share XOR the server's share (unwrapped with the token's wrap key),
 * verified against the token's public key (§2.9). Throws `KeyVerificationError`.
 */
export function openAccount(token: AccountTokenMaterial, wrappedKeyShare: string): KeyPairHex {
  let privateKey: string;
  try {
    privateKey = reconstructPrivateKey(wrappedKeyShare, token.keyShare, token.wrapKey);
  } catch (cause) {
    throw new KeyVerificationError(
      'wrapped_key_share',
      "the server's wrapped key share does not open with the token's wrap key: the answer was not made for this token (tampered, or the token belongs to another account or server)",
      { cause },
    );
  }
  if (!constantTimeEqual(x25519PublicKey(privateKey), token.publicKey.toLowerCase())) {
    throw new KeyVerificationError(
      'account_public_key',
      "the account key rebuilt from the token and the server's wrapped key share does not match the token's public key (a mismatched or tampered key share, or a damaged token)",
    );
  }
  return { publicKey: token.publicKey.toLowerCase(), privateKey };
}

/** An environment's key as the server sends it (wrapped to the account) plus what names it in errors. */
export interface WrappedEnvironmentKey {
  wrappedSeed: string;
  wrappedSalt: string;
  /** The server's `identity_key`: the environment's X25519 public key. */
  identityKey: string;
  environmentId?: string;
  /** How errors name it, e.g. `environment "Production" of app "web"`. */
  label?: string;
}

/** A verified environment key: the X25519 pair (hex and bytes) and the digest salt. */
export interface EnvironmentKeys {
  readonly publicKey: string;
  readonly privateKey: string;
  /** Salt of the key digests (the `keyDigest` blind index), hex text. */
  readonly salt: string;
  /** The pair as bytes, for the decryption loop. */
  readonly recipient: RecipientKey;
}

/** `WrappedEnvironmentKey` of a `/secrets/tokens/` entry. */
export function wrappedEnvironmentKey(ek: BootstrapEnvironmentKey, appName?: string): WrappedEnvironmentKey {
  return {
    wrappedSeed: ek.wrapped_seed,
    wrappedSalt: ek.wrapped_salt,
    identityKey: ek.identity_key,
    environmentId: ek.environment.id,
    label: `environment "${ek.environment.name}"${appName !== undefined ? ` of app "${appName}"` : ''} (${ek.environment.id})`,
  };
}

/**
 * Unwraps an environment's seed and salt with the account key, derives the environment's key pair (§2.10) and
 * verifies it against the server's `identity_key`. Throws `KeyVerificationError`.
 */
export function openEnvironment(account: KeyPairHex, env: WrappedEnvironmentKey): EnvironmentKeys {
  const label = env.label ?? `environment ${env.environmentId ?? '(unnamed)'}`;
  let seed: string;
  let salt: string;
  let kp: KeyPairHex;
  try {
    seed = decryptAsymmetric(env.wrappedSeed, account.privateKey, account.publicKey);
    salt = decryptAsymmetric(env.wrappedSalt, account.privateKey, account.publicKey);
    kp = kxSeedKeyPair(seed);
  } catch (cause) {
    throw new KeyVerificationError(
      'environment_key',
      `${label}: its wrapped seed or salt does not open with the account key`,
      { cause, environmentId: env.environmentId },
    );
  }
  if (
    typeof env.identityKey !== 'string' ||
    !constantTimeEqual(kp.publicKey, env.identityKey.toLowerCase())
  ) {
    throw new KeyVerificationError(
      'identity_key',
      `${label}: the key derived from its wrapped seed does not match the server's identity_key for it`,
      { environmentId: env.environmentId },
    );
  }
  return {
    publicKey: kp.publicKey,
    privateKey: kp.privateKey,
    salt,
    recipient: recipientKey(kp.privateKey, kp.publicKey),
  };
}

/** Opens one `ph:v1` ciphertext with the environment's key (throws CryptoError). */
export function openCiphertext(env: EnvironmentKeys, ciphertext: string): string {
  return decryptAsymmetricWith(ciphertext, env.recipient);
}

/** The decrypted fields of one secret. */
export interface DecryptedFields {
  key: string;
  /** The effective value: the active personal override's when there is one. */
  value: string;
  comment: string;
  /** True when `value` comes from an active personal override (User tokens only). */
  overridden: boolean;
}

/** Opens one ciphertext; the agent passes one that remembers unchanged ciphertexts. */
export type CiphertextOpener = (ciphertext: string) => string;

/**
 * Decrypts a secret's key, value (the active override's when present) and comment. Rules, as Phase's clients:
 * an empty field is the empty string (not ciphertext); a comment that is not `ph:v1` ciphertext is kept as it is
 * (older clients stored plain comments). Throws CryptoError when a field does not decrypt.
 */
export function decryptSecret(
  env: EnvironmentKeys,
  item: Pick<EncryptedSecret, 'key' | 'value' | 'comment' | 'override'>,
  open: CiphertextOpener = (c) => openCiphertext(env, c),
): DecryptedFields {
  const dec = (c: string): string => (c === '' ? '' : open(c));
  const overridden = !!item.override && item.override.isActive === true;
  return {
    key: dec(item.key),
    value: overridden ? dec(item.override!.value) : dec(item.value),
    comment: looksLikePhaseCiphertext(item.comment) ? dec(item.comment) : (item.comment ?? ''),
    overridden,
  };
}

type SecretFields = Pick<EncryptedSecret, 'key' | 'value' | 'comment' | 'override'>;

/**
 * `decryptSecret` over a list of one environment's secrets, with the asymmetric work spread over a
 * `DecryptPool`'s worker threads when one is given (large lists only; see core/crypto-worker.ts). Per item: the
 * decrypted fields, or the CryptoError of the field that did not decrypt.
 */
export async function decryptSecretList(
  env: EnvironmentKeys,
  items: SecretFields[],
  pool?: DecryptPool,
): Promise<Array<DecryptedFields | CryptoError>> {
  // The ciphertexts to open, each once, found by running decryptSecret's own rules with an opener that collects.
  const index = new Map<string, number>();
  const cts: string[] = [];
  const collect: CiphertextOpener = (c) => {
    if (!index.has(c)) {
      index.set(c, cts.length);
      cts.push(c);
    }
    return '';
  };
  for (const item of items) decryptSecret(env, item, collect);
  const opened: Array<string | CryptoError> = pool
    ? await pool.openAll(env.recipient, cts)
    : decryptAllWith(cts, env.recipient);
  const open: CiphertextOpener = (c) => {
    const r = opened[index.get(c)!];
    if (r instanceof CryptoError) throw r;
    return r;
  };
  return items.map((item) => {
    try {
      return decryptSecret(env, item, open);
    } catch (err) {
      if (err instanceof CryptoError) return err;
      throw err;
    }
  });
}
