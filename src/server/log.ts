import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestContext } from './context.js';

export interface Logger {
  request(req: IncomingMessage, res: ServerResponse, context: RequestContext, started: number, path: string): void;
  crash(context: RequestContext, error: unknown): void;
}

/**
 * One JSON line per request on stderr: id, route, status, duration, the providers tried with
 * their outcome and time. It never prints bodies, headers or keys.
 */
export function createLogger(enabled: boolean): Logger {
  if (!enabled) return { request: () => undefined, crash: (context, error) => writeLine({ level: 'error', id: context.id, error: describe(error) }) };
  return {
    request(req, res, context, started, path) {
      const line: Record<string, unknown> = {
        time: new Date().toISOString(),
        id: context.id,
        method: req.method,
        route: path,
        status: res.statusCode,
        ms: Math.round((performance.now() - started) * 100) / 100,
      };
      if (context.provider !== undefined) line.provider = context.provider;
      if (context.attempts !== undefined) line.attempts = context.attempts;
      if (context.streamError !== undefined) line.stream_error = context.streamError;
      writeLine(line);
    },
    crash(context, error) {
      writeLine({ time: new Date().toISOString(), level: 'error', id: context.id, error: describe(error) });
    },
  };
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function writeLine(line: Record<string, unknown>): void {
  process.stderr.write(`${JSON.stringify(line)}\n`);
}
