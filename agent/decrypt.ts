/**
 * The agent's side of the E2E read. Opening the account, verifying keys and decrypting are core's
 * (core/e2e-read.ts, shared with `PhaseSession`); the agent adds only memory: account and environment keys
 * memoised by what the server sent (re-verified only when that changes), and the plaintexts of the previous sync
 * by ciphertext, so unchanged secrets cost no asymmetric work. Runs once per sync, never per request.
 */
import type { KeyPairHex } from '../core/crypto';
import {
  type EnvironmentKeys,
  decryptSecret,
  openAccount,
  openCiphertext,
  openEnvironment,
  wrappedEnvironmentKey,
} from '../core/e2e-read';
import type { PssToken } from '../core/token';
import type { BootstrapEnvironmentKey, EncryptedSecret } from '../core/schemas';

export interface PlainSecret {
  id: string;
  key: string;
  value: string;
  comment: string;
  path: string;
  tags: string[];
  type: string;
  version: number;
  updatedAt?: string;
  overridden: boolean;
}

export class KeyRing {
  private account: KeyPairHex | undefined;
  private accountFor = '';
  private envKeys = new Map<string, EnvironmentKeys>();

  /**
   * The account key pair rebuilt from the token and the server-held share, verified against the token's public
   * key (core's `openAccount`). Throws `KeyVerificationError`.
   */
  accountKey(token: PssToken, wrappedKeyShare: string): KeyPairHex {
    const id = `${token.bearer}:${token.publicKey}:${token.keyShare}:${token.wrapKey}:${wrappedKeyShare}`;
    if (!this.account || this.accountFor !== id) {
      this.account = undefined;
      this.envKeys.clear();
      this.account = openAccount(token, wrappedKeyShare);
      this.accountFor = id;
    }
    return this.account;
  }

  /** An environment's key, verified against its `identity_key` (core's `openEnvironment`). Throws `KeyVerificationError`. */
  envKey(account: KeyPairHex, ek: BootstrapEnvironmentKey, appName?: string): EnvironmentKeys {
    const id = `${ek.wrapped_seed}|${ek.wrapped_salt}|${ek.identity_key}`;
    let k = this.envKeys.get(id);
    if (!k) {
      k = openEnvironment(account, wrappedEnvironmentKey(ek, appName));
      this.envKeys.set(id, k);
    }
    return k;
  }

  clear(): void {
    this.account = undefined;
    this.accountFor = '';
    this.envKeys.clear();
  }
}

/** Plaintexts by ciphertext from the previous sync: unchanged secrets cost no asymmetric work on the next one. */
export type PlainMemo = { prev?: Map<string, string>; next: Map<string, string> };

/**
 * Decrypts a list with core's rules (active personal override, empty fields, plain comments); `memo` supplies
 * and collects plaintexts by ciphertext. Throws CryptoError on the first item that does not decrypt.
 */
export function decryptSecrets(
  list: EncryptedSecret[],
  env: EnvironmentKeys,
  tags?: string[],
  memo?: PlainMemo,
): PlainSecret[] {
  const out: PlainSecret[] = [];
  const want = tags && tags.length ? new Set(tags) : undefined;
  const open = (ct: string): string => {
    let pt = memo?.prev?.get(ct) ?? memo?.next.get(ct);
    if (pt === undefined) pt = openCiphertext(env, ct);
    memo?.next.set(ct, pt);
    return pt;
  };
  for (const s of list) {
    if (want && !s.tags.some((t) => want.has(t))) continue;
    const d = decryptSecret(env, s, open);
    out.push({
      id: s.id,
      key: d.key,
      value: d.value,
      comment: d.comment,
      path: s.path,
      tags: s.tags,
      type: s.type,
      version: s.version,
      updatedAt: s.updatedAt,
      overridden: d.overridden,
    });
  }
  return out;
}
