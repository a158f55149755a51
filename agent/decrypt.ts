/**
 * Decrypts one scope's ciphertext with the token's key material (all primitives come from core/crypto).
 * Runs once per sync, never per request. Unwrapped environment keys are memoised by their wrapped form, so an
 * unchanged environment costs no asymmetric work on the next sync.
 */
import {
  decryptAsymmetric,
  reconstructPrivateKey,
  unwrapEnvironmentKey,
  type EnvironmentKeyMaterial,
  type KeyPairHex,
} from '../core/crypto';
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
  private envKeys = new Map<string, EnvironmentKeyMaterial>();

  /** The account key pair rebuilt from the token and the server-held share (§2.9). Throws CryptoError. */
  accountKey(token: PssToken, wrappedKeyShare: string): KeyPairHex {
    const id = `${token.bearer}:${wrappedKeyShare}`;
    if (!this.account || this.accountFor !== id) {
      this.account = {
        publicKey: token.publicKey,
        privateKey: reconstructPrivateKey(wrappedKeyShare, token.keyShare, token.wrapKey),
      };
      this.accountFor = id;
      this.envKeys.clear();
    }
    return this.account;
  }

  envKey(account: KeyPairHex, ek: BootstrapEnvironmentKey): EnvironmentKeyMaterial {
    const id = `${ek.wrapped_seed}|${ek.wrapped_salt}`;
    let k = this.envKeys.get(id);
    if (!k) {
      k = unwrapEnvironmentKey({ wrappedSeed: ek.wrapped_seed, wrappedSalt: ek.wrapped_salt }, account);
      this.envKeys.set(id, k);
    }
    return k;
  }

  clear(): void {
    this.account = undefined;
    this.envKeys.clear();
  }
}

/** Plaintexts by ciphertext from the previous sync: unchanged secrets cost no asymmetric work on the next one. */
export type PlainMemo = { prev?: Map<string, string>; next: Map<string, string> };

/** Decrypts a list; the active personal override (PAT callers) replaces the value, as the Node and Go SDKs do. */
export function decryptSecrets(
  list: EncryptedSecret[],
  env: EnvironmentKeyMaterial,
  tags?: string[],
  memo?: PlainMemo,
): PlainSecret[] {
  const out: PlainSecret[] = [];
  const want = tags && tags.length ? new Set(tags) : undefined;
  const dec = (ct: string): string => {
    let pt = memo?.prev?.get(ct) ?? memo?.next.get(ct);
    if (pt === undefined) pt = decryptAsymmetric(ct, env.privateKey, env.publicKey);
    memo?.next.set(ct, pt);
    return pt;
  };
  for (const s of list) {
    if (want && !s.tags.some((t) => want.has(t))) continue;
    const useOverride = !!s.override && s.override.isActive;
    out.push({
      id: s.id,
      key: dec(s.key),
      value: dec(useOverride ? s.override!.value : s.value),
      comment: s.comment ? dec(s.comment) : '',
      path: s.path,
      tags: s.tags,
      type: s.type,
      version: s.version,
      updatedAt: s.updatedAt,
      overridden: useOverride,
    });
  }
  return out;
}
