import type { AttemptRecord } from '../core/router.js';

/** Per-request state shared by the app and a route: for headers and the log line. */
export interface RequestContext {
  readonly id: string;
  readonly query: URLSearchParams;
  /** Headers to add to the response, whatever its status. */
  readonly headers: Record<string, string>;
  provider?: string;
  attempts?: AttemptRecord[];
  streamError?: string;
}
