/** Shared pieces of the Phase resources: the client type, 404 handling, common attribute declarations. */
import { ApiError } from '../../core/api-errors';
import type { PhaseClient } from '../../core/client';
import type { AttributeDef } from '../framework/schema';

export type Client = PhaseClient;

export function isNotFound(e: unknown): boolean {
  return e instanceof ApiError && e.status === 404;
}

/** Runs a read; a 404 means the object is gone (drift), which Terraform turns into a planned re-create. */
export async function orNullIfGone<T>(fn: () => Promise<T>): Promise<T | null> {
  try {
    return await fn();
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** Deletes, treating "already gone" as success. */
export async function deleteIgnoringGone(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}

export const idAttr = (what: string): AttributeDef => ({
  type: 'string',
  computed: true,
  description: `The ${what} id (UUID).`,
  planModifiers: ['useStateForUnknown'],
});

export const createdAt: AttributeDef = {
  type: 'string',
  computed: true,
  description: 'When the object was created (ISO-8601, UTC).',
  planModifiers: ['useStateForUnknown'],
};

export const updatedAt: AttributeDef = {
  type: 'string',
  computed: true,
  description: 'When the object was last changed (ISO-8601, UTC).',
};
