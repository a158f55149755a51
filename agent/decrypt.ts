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

/** Decrypts a list; the active personal override (PAT callers) replaces the value, as the Node and Go SDKs do. */
export function decryptSecrets(list: EncryptedSecret[], env: EnvironmentKeyMaterial, tags?: string[]): PlainSecret[] {
  const out: PlainSecret[] = [];
  const want = tags && tags.length ? new Set(tags) : undefined;
  for (const s of list) {
    if (want && !s.tags.some((t) => want.has(t))) continue;
    const useOverride = !!s.override && s.override.isActive;
    out.push({
      id: s.id,
      key: decryptAsymmetric(s.key, env.privateKey, env.publicKey),
      value: decryptAsymmetric(useOverride ? s.override!.value : s.value, env.privateKey, env.publicKey),
      comment: s.comment ? decryptAsymmetric(s.comment, env.privateKey, env.publicKey) : '',
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
