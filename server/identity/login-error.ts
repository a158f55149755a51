/** A refused login: the status and message the client gets (`{"error": ...}`), plus extra fields Phase sends. */
export class LoginError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
  }
}
