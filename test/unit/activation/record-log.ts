/** A logger that keeps what is logged, for the activation's unit tests. */
import type { Logger } from '../../../src/log.js';

export interface LogRecord {
  level: string;
  msg: string;
  fields: Record<string, unknown>;
}

export function recordLog(): { log: Logger; records: LogRecord[] } {
  const records: LogRecord[] = [];
  const at =
    (level: string) =>
    (objOrMsg: Record<string, unknown> | string, msg?: string): void => {
      if (typeof objOrMsg === 'string') records.push({ level, msg: objOrMsg, fields: {} });
      else records.push({ level, msg: msg ?? '', fields: objOrMsg });
    };
  const log: Logger = {
    fatal: at('fatal'),
    error: at('error'),
    warn: at('warn'),
    info: at('info'),
    debug: at('debug'),
    trace: at('trace'),
    child: () => log,
  };
  return { log, records };
}
