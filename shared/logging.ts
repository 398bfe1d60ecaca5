import pino, { type Logger, type LoggerOptions } from 'pino';

export type { Logger };

// Cloud Logging reads `severity` and `message` from JSON lines on stdout.
const severityByLevel: Record<string, string> = {
  trace: 'DEBUG',
  debug: 'DEBUG',
  info: 'INFO',
  warn: 'WARNING',
  error: 'ERROR',
  fatal: 'CRITICAL',
};

/** Keys whose values never reach a log line (tokens, keys, credentials). */
export const redactedPaths = [
  'token',
  '*.token',
  'consulToken',
  '*.consulToken',
  'authorization',
  '*.authorization',
  'headers["x-consul-token"]',
  '*.headers["x-consul-token"]',
  'encrypt',
  '*.encrypt',
];

export interface LoggerSettings {
  name: string;
  level?: string;
  destination?: pino.DestinationStream;
}

/** A structured JSON logger in Cloud Logging's format (severity, message, time). */
export function createLogger(settings: LoggerSettings): Logger {
  const options: LoggerOptions = {
    name: settings.name,
    level: settings.level ?? process.env.LOG_LEVEL ?? 'info',
    messageKey: 'message',
    base: { component: settings.name },
    timestamp: () => `,"time":"${new Date().toISOString()}"`,
    formatters: {
      level: (label) => ({ severity: severityByLevel[label] ?? 'DEFAULT' }),
    },
    redact: { paths: redactedPaths, censor: '[redacted]' },
  };
  return settings.destination ? pino(options, settings.destination) : pino(options);
}
