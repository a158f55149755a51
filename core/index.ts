/** Public API of the phase-bridge protocol core. Other parts import from here (or from the modules directly). */
export * from './errors';
export * from './hex';
export * from './token';
export * from './crypto';
export * from './e2e-read';
export * from './mint';
export * from './schemas';
export * from './api-errors';
export * from './retry';
export { classifyNetworkError, fetchTransport, nodeTransport, sendWithRetry } from './http';
export type { HttpRequest, HttpResponse, RetryEvent, SendOptions, Transport } from './http';
export * from './client';
export * from './session';
export * from './references';
export * from './export';
export { VERSION } from './version';
