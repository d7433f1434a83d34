import type { IncomingMessage, ServerResponse } from 'node:http';
import { finalStatus, type RequestContext } from './context.js';
import { admittedKey } from './gateway-keys.js';

export interface Logger {
  request(req: IncomingMessage, res: ServerResponse, context: RequestContext, started: number, path: string): void;
  crash(context: RequestContext, error: unknown): void;
}

/**
 * One JSON line per request on stderr: id, route, status, duration, the providers tried with
 * their outcome and time. It never prints bodies, headers or keys.
 */
export function createLogger(enabled: boolean): Logger {
  // An error of ours is logged whether or not requests are.
  const crash = (context: RequestContext, error: unknown): void =>
    writeLine({ time: new Date().toISOString(), level: 'error', id: context.id, error: describe(error) }, true);
  if (!enabled) return { request: () => undefined, crash };
  return {
    request(req, res, context, started, path) {
      // Logged at `close`: a response that never finished was left by its client (499, as
      // nginx says) or cut by shutdown; `sent` keeps the status already sent, if any.
      const finished = res.writableFinished;
      const line: Record<string, unknown> = {
        time: new Date().toISOString(),
        id: context.id,
        method: req.method,
        route: path.length > 200 ? `${path.slice(0, 200)}…` : path,
        status: finalStatus(res, context),
        ms: Math.round((performance.now() - started) * 100) / 100,
      };
      if (context.cut === true) line.outcome = 'shutdown_cut';
      else if (!finished) line.outcome = 'client_closed';
      if (!finished && res.headersSent) line.sent = res.statusCode;
      const key = admittedKey(context);
      if (key !== undefined) line.key = key.name; // a listed key's name; never the key
      if (context.provider !== undefined) line.provider = context.provider;
      if (context.attempts !== undefined) line.attempts = context.attempts;
      if (context.streamError !== undefined) line.stream_error = context.streamError;
      if (context.warnings !== undefined) line.warnings = context.warnings;
      if (context.firstContentMs !== undefined) line.first_content_ms = context.firstContentMs;
      writeLine(line);
    },
    crash,
  };
}

/** An error of our own, with its stack (where the bug is): never sent to a client. */
function describe(error: unknown): string {
  return error instanceof Error ? (error.stack ?? `${error.name}: ${error.message}`) : String(error);
}

/** A line for events that are not requests (shutdown, internal errors inside attempts). */
export function logEvent(fields: Record<string, unknown>): void {
  writeLine({ time: new Date().toISOString(), ...fields }, true);
}

/**
 * Request lines are gathered and written together, at most `flushMs` after the first of them:
 * stderr is written synchronously, a system call each, which at one connection cost more per
 * request than building the line. Under load many requests share one write; a quiet server's line
 * is out within `flushMs`. Events and errors (`now`) go out at once, after what is pending.
 * Whatever is pending is written on shutdown and on exit.
 */
const flushMs = 20;
let pending = '';
let timer: NodeJS.Timeout | undefined;

function writeLine(line: Record<string, unknown>, now = false): void {
  pending += `${JSON.stringify(line)}\n`;
  if (now) flushLog();
  else timer ??= setTimeout(flushLog, flushMs).unref();
}

export function flushLog(): void {
  if (timer !== undefined) clearTimeout(timer);
  timer = undefined;
  if (pending === '') return;
  const text = pending;
  pending = '';
  process.stderr.write(text);
}

process.once('exit', flushLog);
