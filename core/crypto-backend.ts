/**
 * The libsodium primitives Phase's protocol uses, behind one interface with two implementations:
 *
 * - `native`: `sodium-native` (N-API bindings to libsodium, prebuilt binaries inside the npm package, loaded with
 *   node-gyp-build; nothing is compiled or downloaded at install). About 3× faster per X25519 than WebAssembly and
 *   about 9 MB less resident memory than libsodium-wrappers.
 * - `wasm`: `libsodium-wrappers` (libsodium compiled to WebAssembly), the reference implementation every test
 *   vector is checked against, and the fallback wherever the native binding does not load (no prebuild for the
 *   platform, musl, a sandbox that forbids native addons).
 *
 * `PHASE_BRIDGE_CRYPTO` selects: unset or `auto` = native where it loads, else wasm; `wasm` forces the fallback
 * (tests, debugging); `native` requires the native binding and fails otherwise. Each module is required only when
 * chosen, so a process on the native backend never loads (or pays the memory of) the WebAssembly build.
 *
 * Everything here works on bytes; hex, base64, UTF-8 and the error messages live in core/crypto.ts.
 */
import type sodiumWasm from 'libsodium-wrappers';
import { CryptoError } from './errors';

export type CryptoBackendName = 'native' | 'wasm';
export type CryptoBackendChoice = CryptoBackendName | 'auto';

export interface RawKeyPair {
  publicKey: Uint8Array;
  privateKey: Uint8Array;
}

export interface RawSessionKeys {
  rx: Uint8Array;
  tx: Uint8Array;
}

/** The primitives, as libsodium defines them. Failures throw (any Error); core/crypto.ts turns them into CryptoError. */
export interface CryptoBackend {
  readonly name: CryptoBackendName;
  randomBytes(n: number): Uint8Array;
  /** XChaCha20-Poly1305-IETF, no additional data: ciphertext ‖ 16-byte tag. */
  aeadEncrypt(plaintext: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  /** Inverse of `aeadEncrypt`; throws when the tag does not verify. */
  aeadDecrypt(ciphertext: Uint8Array, nonce: Uint8Array, key: Uint8Array): Uint8Array;
  kxSeedKeyPair(seed: Uint8Array): RawKeyPair;
  kxKeyPair(): RawKeyPair;
  kxClientSessionKeys(clientPk: Uint8Array, clientSk: Uint8Array, serverPk: Uint8Array): RawSessionKeys;
  kxServerSessionKeys(serverPk: Uint8Array, serverSk: Uint8Array, clientPk: Uint8Array): RawSessionKeys;
  /** The server's receive key only (what decrypting `ph:v1` needs): one X25519 and one BLAKE2b-512. */
  kxServerRx(serverPk: Uint8Array, serverSk: Uint8Array, clientPk: Uint8Array): Uint8Array;
  scalarmultBase(privateKey: Uint8Array): Uint8Array;
  /** BLAKE2b with `outLen` bytes of output, keyed when `key` is not null. */
  generichash(outLen: number, message: Uint8Array, key: Uint8Array | null): Uint8Array;
  signSeedKeyPair(seed: Uint8Array): RawKeyPair;
  signKeyPair(): RawKeyPair;
  ed25519PkToCurve25519(publicKey: Uint8Array): Uint8Array;
  ed25519SkToCurve25519(secretKey: Uint8Array): Uint8Array;
}

// ---- native: sodium-native ----

/** The part of sodium-native's API used here (it ships no types): outputs are caller-allocated buffers. */
interface SodiumNative {
  randombytes_buf(out: Uint8Array): void;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
    c: Uint8Array,
    m: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(
    m: Uint8Array,
    nsec: null,
    c: Uint8Array,
    ad: Uint8Array | null,
    npub: Uint8Array,
    k: Uint8Array,
  ): number;
  crypto_kx_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_kx_keypair(pk: Uint8Array, sk: Uint8Array): void;
  crypto_kx_client_session_keys(
    rx: Uint8Array | null,
    tx: Uint8Array | null,
    clientPk: Uint8Array,
    clientSk: Uint8Array,
    serverPk: Uint8Array,
  ): void;
  crypto_kx_server_session_keys(
    rx: Uint8Array | null,
    tx: Uint8Array | null,
    serverPk: Uint8Array,
    serverSk: Uint8Array,
    clientPk: Uint8Array,
  ): void;
  crypto_scalarmult_base(q: Uint8Array, n: Uint8Array): void;
  crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_keypair(pk: Uint8Array, sk: Uint8Array): void;
  crypto_sign_ed25519_pk_to_curve25519(x25519Pk: Uint8Array, ed25519Pk: Uint8Array): void;
  crypto_sign_ed25519_sk_to_curve25519(x25519Sk: Uint8Array, ed25519Sk: Uint8Array): void;
}

const TAG = 16;

function nativeBackend(na: SodiumNative): CryptoBackend {
  const pair = (pkLen: number, skLen: number, fill: (pk: Uint8Array, sk: Uint8Array) => void): RawKeyPair => {
    const publicKey = new Uint8Array(pkLen);
    const privateKey = new Uint8Array(skLen);
    fill(publicKey, privateKey);
    return { publicKey, privateKey };
  };
  return {
    name: 'native',
    randomBytes(n) {
      const out = new Uint8Array(n);
      na.randombytes_buf(out);
      return out;
    },
    aeadEncrypt(m, nonce, key) {
      const c = new Uint8Array(m.length + TAG);
      na.crypto_aead_xchacha20poly1305_ietf_encrypt(c, m, null, null, nonce, key);
      return c;
    },
    aeadDecrypt(c, nonce, key) {
      if (c.length < TAG) throw new Error('ciphertext shorter than the tag');
      const m = new Uint8Array(c.length - TAG);
      na.crypto_aead_xchacha20poly1305_ietf_decrypt(m, null, c, null, nonce, key);
      return m;
    },
    kxSeedKeyPair: (seed) => pair(32, 32, (pk, sk) => na.crypto_kx_seed_keypair(pk, sk, seed)),
    kxKeyPair: () => pair(32, 32, (pk, sk) => na.crypto_kx_keypair(pk, sk)),
    kxClientSessionKeys(cpk, csk, spk) {
      const rx = new Uint8Array(32);
      const tx = new Uint8Array(32);
      na.crypto_kx_client_session_keys(rx, tx, cpk, csk, spk);
      return { rx, tx };
    },
    kxServerSessionKeys(spk, ssk, cpk) {
      const rx = new Uint8Array(32);
      const tx = new Uint8Array(32);
      na.crypto_kx_server_session_keys(rx, tx, spk, ssk, cpk);
      return { rx, tx };
    },
    kxServerRx(spk, ssk, cpk) {
      const rx = new Uint8Array(32);
      na.crypto_kx_server_session_keys(rx, null, spk, ssk, cpk);
      return rx;
    },
    scalarmultBase(n) {
      const q = new Uint8Array(32);
      na.crypto_scalarmult_base(q, n);
      return q;
    },
    generichash(outLen, message, key) {
      // sodium-native refuses keys shorter than crypto_generichash_KEYBYTES_MIN (16 bytes), which libsodium itself
      // and Phase accept (a digest salt can be any text up to 64 bytes). Those few go through the portable code.
      if (key && key.length < 16) return blake2bPortable(outLen, message, key);
      const out = new Uint8Array(outLen);
      if (key) na.crypto_generichash(out, message, key);
      else na.crypto_generichash(out, message);
      return out;
    },
    signSeedKeyPair: (seed) => pair(32, 64, (pk, sk) => na.crypto_sign_seed_keypair(pk, sk, seed)),
    signKeyPair: () => pair(32, 64, (pk, sk) => na.crypto_sign_keypair(pk, sk)),
    ed25519PkToCurve25519(edPk) {
      const out = new Uint8Array(32);
      na.crypto_sign_ed25519_pk_to_curve25519(out, edPk);
      return out;
    },
    ed25519SkToCurve25519(edSk) {
      const out = new Uint8Array(32);
      na.crypto_sign_ed25519_sk_to_curve25519(out, edSk);
      return out;
    },
  };
}

/**
 * BLAKE2b (RFC 7693) with an optional key, in portable code: the native backend's path for keys of 1–15 bytes.
 * Slow (BigInt) and only used for digests, never per secret; checked against libsodium for every key length.
 */
export function blake2bPortable(outLen: number, message: Uint8Array, key: Uint8Array | null): Uint8Array {
  const M64 = (1n << 64n) - 1n;
  const IV = [
    0x6a09e667f3bcc908n,
    0xbb67ae8584caa73bn,
    0x3c6ef372fe94f82bn,
    0xa54ff53a5f1d36f1n,
    0x510e527fade682d1n,
    0x9b05688c2b3e6c1fn,
    0x1f83d9abfb41bd6bn,
    0x5be0cd19137e2179n,
  ];
  const SIGMA = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
  ];
  const kk = key ? key.length : 0;
  if (outLen < 1 || outLen > 64 || kk > 64)
    throw new Error('BLAKE2b: output 1-64 bytes, key at most 64 bytes');
  const rotr = (x: bigint, n: bigint): bigint => ((x >> n) | (x << (64n - n))) & M64;
  const h = IV.slice();
  h[0] ^= 0x01010000n ^ (BigInt(kk) << 8n) ^ BigInt(outLen);
  let data = message;
  if (kk > 0) {
    data = new Uint8Array(128 + message.length);
    data.set(key!, 0);
    data.set(message, 128);
  }
  const compress = (block: Uint8Array, t: bigint, last: boolean): void => {
    const m: bigint[] = [];
    const dv = new DataView(block.buffer, block.byteOffset, 128);
    for (let i = 0; i < 16; i++) m.push(dv.getBigUint64(i * 8, true));
    const v = [...h, ...IV];
    v[12] ^= t & M64;
    v[13] ^= t >> 64n;
    if (last) v[14] ^= M64;
    const g = (a: number, b: number, c: number, d: number, x: bigint, y: bigint): void => {
      v[a] = (v[a] + v[b] + x) & M64;
      v[d] = rotr(v[d] ^ v[a], 32n);
      v[c] = (v[c] + v[d]) & M64;
      v[b] = rotr(v[b] ^ v[c], 24n);
      v[a] = (v[a] + v[b] + y) & M64;
      v[d] = rotr(v[d] ^ v[a], 16n);
      v[c] = (v[c] + v[d]) & M64;
      v[b] = rotr(v[b] ^ v[c], 63n);
    };
    for (let r = 0; r < 12; r++) {
      const s = SIGMA[r % 10];
      g(0, 4, 8, 12, m[s[0]], m[s[1]]);
      g(1, 5, 9, 13, m[s[2]], m[s[3]]);
      g(2, 6, 10, 14, m[s[4]], m[s[5]]);
      g(3, 7, 11, 15, m[s[6]], m[s[7]]);
      g(0, 5, 10, 15, m[s[8]], m[s[9]]);
      g(1, 6, 11, 12, m[s[10]], m[s[11]]);
      g(2, 7, 8, 13, m[s[12]], m[s[13]]);
      g(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (let i = 0; i < 8; i++) h[i] ^= v[i] ^ v[i + 8];
  };
  let off = 0;
  while (data.length - off > 128) {
    compress(data.subarray(off, off + 128), BigInt(off + 128), false);
    off += 128;
  }
  const lastBlock = new Uint8Array(128);
  lastBlock.set(data.subarray(off));
  compress(lastBlock, BigInt(data.length), true);
  const out = new Uint8Array(64);
  const ov = new DataView(out.buffer);
  for (let i = 0; i < 8; i++) ov.setBigUint64(i * 8, h[i], true);
  return out.slice(0, outLen);
}

// ---- wasm: libsodium-wrappers ----

function wasmBackend(s: typeof sodiumWasm): CryptoBackend {
  return {
    name: 'wasm',
    randomBytes: (n) => s.randombytes_buf(n),
    aeadEncrypt: (m, nonce, key) => s.crypto_aead_xchacha20poly1305_ietf_encrypt(m, null, null, nonce, key),
    aeadDecrypt: (c, nonce, key) => s.crypto_aead_xchacha20poly1305_ietf_decrypt(null, c, null, nonce, key),
    kxSeedKeyPair: (seed) => s.crypto_kx_seed_keypair(seed),
    kxKeyPair: () => s.crypto_kx_keypair(),
    kxClientSessionKeys(cpk, csk, spk) {
      const k = s.crypto_kx_client_session_keys(cpk, csk, spk);
      return { rx: k.sharedRx, tx: k.sharedTx };
    },
    kxServerSessionKeys(spk, ssk, cpk) {
      const k = s.crypto_kx_server_session_keys(spk, ssk, cpk);
      return { rx: k.sharedRx, tx: k.sharedTx };
    },
    kxServerRx: (spk, ssk, cpk) => s.crypto_kx_server_session_keys(spk, ssk, cpk).sharedRx,
    scalarmultBase: (n) => s.crypto_scalarmult_base(n),
    generichash: (outLen, message, key) => s.crypto_generichash(outLen, message, key),
    signSeedKeyPair: (seed) => s.crypto_sign_seed_keypair(seed),
    signKeyPair: () => s.crypto_sign_keypair(),
    ed25519PkToCurve25519: (pk) => s.crypto_sign_ed25519_pk_to_curve25519(pk),
    ed25519SkToCurve25519: (sk) => s.crypto_sign_ed25519_sk_to_curve25519(sk),
  };
}

// ---- loading ----

let nativeLoad: { backend?: CryptoBackend; error?: unknown } | undefined;
let wasmLoad: Promise<CryptoBackend> | undefined;

/** The native backend, or undefined with the reason when sodium-native does not load here. */
export function tryNativeBackend(): { backend?: CryptoBackend; error?: unknown } {
  if (!nativeLoad) {
    try {
      nativeLoad = { backend: nativeBackend(require('sodium-native') as SodiumNative) };
    } catch (error) {
      nativeLoad = { error };
    }
  }
  return nativeLoad;
}

export function loadWasmBackend(): Promise<CryptoBackend> {
  if (!wasmLoad) {
    wasmLoad = (async () => {
      const s = require('libsodium-wrappers') as typeof sodiumWasm;
      await s.ready;
      return wasmBackend(s);
    })();
  }
  return wasmLoad;
}

/** Reads `PHASE_BRIDGE_CRYPTO` (or the given choice): `auto` (default), `native` or `wasm`. */
export function backendChoice(
  value: string | undefined = process.env.PHASE_BRIDGE_CRYPTO,
): CryptoBackendChoice {
  const v = (value ?? '').trim().toLowerCase();
  if (v === '' || v === 'auto') return 'auto';
  if (v === 'native' || v === 'wasm') return v;
  throw new CryptoError(`PHASE_BRIDGE_CRYPTO must be auto, native or wasm (got "${value}")`);
}

/** Loads the chosen backend: `auto` prefers native and falls back to wasm. */
export async function loadBackend(choice: CryptoBackendChoice = backendChoice()): Promise<CryptoBackend> {
  if (choice === 'wasm') return loadWasmBackend();
  const native = tryNativeBackend();
  if (native.backend) return native.backend;
  if (choice === 'native') {
    throw new CryptoError(
      `the native crypto backend (sodium-native) does not load here: ${(native.error as Error)?.message ?? native.error}`,
      { cause: native.error },
    );
  }
  return loadWasmBackend();
}
