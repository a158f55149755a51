/**
 * pino JSON logs. The agent never passes secret values or tokens to the logger; the redact list is a second
 * line of defence for fields that could carry them by mistake.
 */
import pino, { type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { component: 'phase-bridge-agent' },
      redact: {
        paths: [
          'token',
          'clientToken',
          'value',
          'values',
          '*.token',
          '*.value',
          'headers.authorization',
          'req.headers',
        ],
        censor: '[redacted]',
      },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Synchronous: a sidecar logs little, and nothing may be lost when it exits right after a SIGTERM.
    destination ?? pino.destination({ fd: 2, sync: true }),
  );
}
