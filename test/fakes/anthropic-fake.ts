/**
 * A fake Anthropic Messages API (`POST /v1/messages`) for tests. Wire bytes come from
 * ./fixtures/anthropic.ts (recorded where the notes have recordings); this file does HTTP,
 * validation as the real API does it, and failure behaviours. Listens on 127.0.0.1 only.
 *
 * It also serves `GET /files/<name>` (a PNG, or `files` given in the options) so tests can hand
 * the provider an http image URL, and records those requests too.
 */
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import {
  ERROR_MESSAGES,
  RECORDED_BASIC_STREAM_EVENTS,
  RECORDED_MESSAGE_JSON,
  RECORDED_OVERLOADED_EVENT,
  RECORDED_RATE_LIMIT_HEADERS,
  TOOL_MESSAGE_JSON,
  TOOL_STREAM_EVENTS,
  errorBody,
  messageJson,
  newMessageId,
  sseEvent,
  textStreamEvents,
  toCrlf,
  toolStreamEvents,
} from './fixtures/anthropic.js';
import { readBody, serveOnLoopback } from '../support/loopback.js';

export type AnthropicBehaviour =
  | { kind: 'ok' } // recorded text answer; a forced tool_choice gets a tool_use of that tool with `toolInput`
  | { kind: 'text'; pieces: readonly string[]; stopReason?: string } // a built text answer
  | { kind: 'tool' } // the recorded tool_use answer (stream or JSON)
  | { kind: 'events'; events: readonly string[] } // 200 SSE with exactly these events, then the end
  | { kind: 'json'; body: string } // 200 application/json with exactly this body
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> } // an exact error answer
  | { kind: 'rate-limit'; retryAfterSeconds: number } // 429 rate_limit_error with retry-after
  | { kind: 'overloaded'; retryAfterSeconds?: number } // 529 overloaded_error
  | { kind: 'stream-error' } // 200 SSE: the recorded start, one delta, then the recorded `event: error` overloaded
  | { kind: 'stall'; afterEvents: number } // 200 SSE: some recorded events, then silence (connection kept open)
  | { kind: 'cut'; afterEvents: number } // 200 SSE: some recorded events, then the socket is destroyed
  | { kind: 'oversized'; bytes: number } // 200 SSE: message_start, then a text delta of about `bytes` bytes
  | { kind: 'hang' }; // never answers

export interface AnthropicFakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body (undefined when empty or not JSON). */
  body: unknown;
  raw: string;
}

export interface AnthropicFakeOptions {
  /** The accepted key; default any non-empty `x-api-key` (a key is always required, as upstream). */
  apiKey?: string;
  /** Model ids served; another gets 404 not_found_error `model: <id>`. Default any. */
  models?: readonly string[];
  /** Line ends of SSE answers; default LF as recorded. */
  framing?: 'lf' | 'crlf';
  behaviour?: AnthropicBehaviour | ((request: AnthropicFakeRequest, index: number) => AnthropicBehaviour);
  /** Input a forced tool gets in `ok` mode (default `{"answer":"42"}`). */
  toolInput?: unknown;
  /** Files served at GET /files/<name> (bytes; the content type is image/png unless the name ends otherwise). */
  files?: Record<string, Buffer>;
}

export interface AnthropicFake {
  /** `http://127.0.0.1:PORT/v1`: the provider's base URL. */
  url: string;
  origin: string;
  /** Every request, /v1/messages and /files alike. */
  requests: AnthropicFakeRequest[];
  /** Requests to /v1/messages that passed validation (what the "model" saw). */
  accepted: AnthropicFakeRequest[];
  /** Answers the client dropped before the fake finished writing them. */
  readonly abortedResponses: number;
  /** Resolves once `abortedResponses` reaches `count`. */
  waitForAborts(count: number, timeoutMs?: number): Promise<void>;
  setBehaviour(behaviour: AnthropicFakeOptions['behaviour']): void;
  close(): Promise<void>;
}

const knownFields = new Set([
  'model',
  'messages',
  'max_tokens',
  'system',
  'stream',
  'temperature',
  'top_p',
  'top_k',
  'stop_sequences',
  'tools',
  'tool_choice',
  'metadata',
  'thinking',
  'service_tier',
]);
const imageTypes = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

class Rejection extends Error {
  constructor(
    readonly status: number,
    readonly type: string,
    message: string,
  ) {
    super(message);
  }
}

export async function startAnthropicFake(options: AnthropicFakeOptions = {}): Promise<AnthropicFake> {
  let behaviour = options.behaviour;
  const requests: AnthropicFakeRequest[] = [];
  const accepted: AnthropicFakeRequest[] = [];
  const frame = options.framing === 'crlf' ? toCrlf : (event: string) => event;
  let received = 0;
  let aborted = 0;
  let closing = false;
  const abortWaiters: Array<{ count: number; resolve: () => void }> = [];
  const files: Record<string, Buffer> = options.files ?? {};

  const headersFor = (contentType: string, extra?: Record<string, string>): Record<string, string> => ({
    'content-type': contentType,
    'request-id': `req_011C${randomBytes(9).toString('base64url')}`,
    ...RECORDED_RATE_LIMIT_HEADERS,
    ...extra,
  });

  const sendError = (res: http.ServerResponse, status: number, type: string, message: string, extra?: Record<string, string>): void => {
    const headers = headersFor('application/json', extra);
    res.writeHead(status, headers);
    res.end(errorBody(type, message, headers['request-id'] as string));
  };

  const sendJson = (res: http.ServerResponse, body: string): void => {
    res.writeHead(200, { ...headersFor('application/json'), 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  };

  /** One res.write() per event; then end, stall, or destroy the socket. */
  const sendEvents = (res: http.ServerResponse, events: readonly string[], then: 'end' | 'stall' | 'destroy' = 'end'): void => {
    res.writeHead(200, { ...headersFor('text/event-stream; charset=utf-8'), 'cache-control': 'no-cache' });
    res.flushHeaders();
    for (const event of events) res.write(frame(event));
    if (then === 'end') res.end();
    else if (then === 'destroy') res.write('', () => res.socket?.destroy());
  };

  const answer = (res: http.ServerResponse, body: Record<string, unknown>, b: AnthropicBehaviour): void => {
    const stream = body.stream === true;
    const model = body.model as string;
    switch (b.kind) {
      case 'hang':
        return;
      case 'status': {
        const headers = headersFor('application/json', b.headers);
        res.writeHead(b.status, headers);
        res.end(b.body ?? errorBody(b.status >= 500 ? 'api_error' : 'invalid_request_error', ERROR_MESSAGES.server, headers['request-id'] as string));
        return;
      }
      case 'rate-limit':
        return sendError(res, 429, 'rate_limit_error', ERROR_MESSAGES.rateLimit, { 'retry-after': String(b.retryAfterSeconds) });
      case 'overloaded':
        return sendError(
          res,
          529,
          'overloaded_error',
          ERROR_MESSAGES.overloaded,
          b.retryAfterSeconds === undefined ? undefined : { 'retry-after': String(b.retryAfterSeconds) },
        );
      case 'json':
        return sendJson(res, b.body);
      case 'events':
        return sendEvents(res, b.events);
      case 'stream-error':
        return sendEvents(res, [...RECORDED_BASIC_STREAM_EVENTS.slice(0, 4), RECORDED_OVERLOADED_EVENT]);
      case 'stall':
        return sendEvents(res, RECORDED_BASIC_STREAM_EVENTS.slice(0, b.afterEvents), 'stall');
      case 'cut':
        return sendEvents(res, RECORDED_BASIC_STREAM_EVENTS.slice(0, b.afterEvents), 'destroy');
      case 'oversized':
        return sendEvents(res, [
          RECORDED_BASIC_STREAM_EVENTS[0] as string,
          RECORDED_BASIC_STREAM_EVENTS[1] as string,
          sseEvent('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x'.repeat(b.bytes) } }),
          ...RECORDED_BASIC_STREAM_EVENTS.slice(5),
        ]);
      case 'tool':
        return stream ? sendEvents(res, TOOL_STREAM_EVENTS) : sendJson(res, TOOL_MESSAGE_JSON);
      case 'text': {
        const id = newMessageId();
        const stopReason = b.stopReason ?? 'end_turn';
        if (stream) return sendEvents(res, textStreamEvents(id, model, b.pieces, stopReason));
        return sendJson(res, messageJson(id, model, [{ type: 'text', text: b.pieces.join('') }], stopReason));
      }
      case 'ok': {
        const choice = body.tool_choice as { type?: string; name?: string } | undefined;
        if (choice?.type === 'tool' && typeof choice.name === 'string') {
          const id = newMessageId();
          const toolId = `toolu_01Fake${randomBytes(8).toString('hex')}`;
          const input = options.toolInput ?? { answer: '42' };
          if (stream) return sendEvents(res, toolStreamEvents(id, model, toolId, choice.name, input));
          return sendJson(res, messageJson(id, model, [{ type: 'tool_use', id: toolId, name: choice.name, input }], 'tool_use'));
        }
        return stream ? sendEvents(res, RECORDED_BASIC_STREAM_EVENTS) : sendJson(res, RECORDED_MESSAGE_JSON);
      }
    }
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string): void => {
    const target = req.url ?? '/';
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const request: AnthropicFakeRequest = { method: req.method ?? 'GET', path: target, headers: req.headers, body, raw };
    requests.push(request);

    if (request.method === 'GET' && target.startsWith('/files/')) {
      const file = files[target.slice('/files/'.length)];
      if (file === undefined) return sendError(res, 404, 'not_found_error', 'Not Found');
      res.writeHead(200, { 'content-type': target.endsWith('.txt') ? 'text/plain' : 'image/png', 'content-length': String(file.length) });
      res.end(file);
      return;
    }
    if (target !== '/v1/messages' || request.method !== 'POST') return sendError(res, 404, 'not_found_error', 'Not Found');

    const key = req.headers['x-api-key'];
    if (typeof key !== 'string' || key === '') return sendError(res, 401, 'authentication_error', 'x-api-key header is required');
    if (options.apiKey !== undefined && key !== options.apiKey) return sendError(res, 401, 'authentication_error', ERROR_MESSAGES.invalidKey);
    if (typeof req.headers['anthropic-version'] !== 'string' || req.headers['anthropic-version'] === '')
      return sendError(res, 400, 'invalid_request_error', 'anthropic-version: header is required');
    try {
      validate(body, options.models);
    } catch (error) {
      if (error instanceof Rejection) return sendError(res, error.status, error.type, error.message);
      throw error;
    }
    accepted.push(request);
    const index = received++;
    const b = typeof behaviour === 'function' ? behaviour(request, index) : (behaviour ?? { kind: 'ok' });
    answer(res, body as Record<string, unknown>, b);
  };

  const server = http.createServer({ noDelay: true }, (req, res) => {
    readBody(req, (raw) => handle(req, res, raw));
    res.once('close', () => {
      if (res.writableFinished || closing) return;
      aborted += 1;
      for (const waiter of abortWaiters.filter((w) => aborted >= w.count)) {
        abortWaiters.splice(abortWaiters.indexOf(waiter), 1);
        waiter.resolve();
      }
    });
  });
  server.keepAliveTimeout = 30_000;
  const { origin, close } = await serveOnLoopback(server, { onClose: () => (closing = true) });

  return {
    url: `${origin}/v1`,
    origin,
    requests,
    accepted,
    get abortedResponses() {
      return aborted;
    },
    waitForAborts(count, timeoutMs = 2000) {
      if (aborted >= count) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`only ${aborted} of ${count} answers were dropped by the client`)), timeoutMs);
        abortWaiters.push({
          count,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
      });
    },
    setBehaviour(next) {
      behaviour = next;
    },
    close,
  };
}

/** The checks the real API makes before answering, with its error wording where known. */
function validate(body: unknown, models: readonly string[] | undefined): void {
  const invalid = (message: string): Rejection => new Rejection(400, 'invalid_request_error', message);
  if (typeof body !== 'object' || body === null || Array.isArray(body))
    throw invalid('There was an error parsing the body of your request: it is not a JSON object');
  const b = body as Record<string, unknown>;
  for (const field of Object.keys(b)) if (!knownFields.has(field)) throw invalid(`${field}: Extra inputs are not permitted`);
  if (typeof b.model !== 'string' || b.model === '') throw invalid('model: Field required');
  if (b.max_tokens === undefined) throw invalid('max_tokens: Field required');
  if (typeof b.max_tokens !== 'number' || !Number.isInteger(b.max_tokens) || b.max_tokens < 1)
    throw invalid('max_tokens: Input should be a valid integer greater than or equal to 1');
  if (!Array.isArray(b.messages)) throw invalid('messages: Field required');
  if (b.stream !== undefined && typeof b.stream !== 'boolean') throw invalid('stream: Input should be a valid boolean');
  if (b.temperature !== undefined && (typeof b.temperature !== 'number' || b.temperature < 0 || b.temperature > 1)) {
    throw invalid('temperature: Input should be less than or equal to 1');
  }
  // Newer models (Opus 4.1 on) refuse both; the exact 400 is quoted in BerriAI/litellm#15097.
  if (b.temperature !== undefined && b.top_p !== undefined)
    throw invalid('`temperature` and `top_p` cannot both be specified for this model. Please use only one.');
  if (b.system !== undefined && typeof b.system !== 'string' && !Array.isArray(b.system))
    throw invalid('system: Input should be a valid string or a list of text blocks');
  if (b.stop_sequences !== undefined && (!Array.isArray(b.stop_sequences) || !b.stop_sequences.every((s) => typeof s === 'string'))) {
    throw invalid('stop_sequences: Input should be a valid list of strings');
  }
  if (b.metadata !== undefined && (typeof b.metadata !== 'object' || b.metadata === null || Object.keys(b.metadata).some((k) => k !== 'user_id'))) {
    throw invalid('metadata: only user_id is permitted');
  }
  const toolNames = validateTools(b.tools, invalid);
  if (b.tool_choice !== undefined) {
    const choice = b.tool_choice as { type?: unknown; name?: unknown };
    if (!['auto', 'any', 'none', 'tool'].includes(String(choice?.type))) throw invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'");
    if (choice.type === 'tool' && !toolNames.has(String(choice.name))) throw invalid(`tool_choice.name: no tool named ${String(choice.name)}`);
    if (toolNames.size === 0) throw invalid('tool_choice may only be specified while providing tools');
  }
  validateMessages(b.messages, invalid);
  if (models !== undefined && !models.includes(b.model)) throw new Rejection(404, 'not_found_error', `model: ${b.model}`);
}

function validateTools(tools: unknown, invalid: (message: string) => Rejection): Set<string> {
  const names = new Set<string>();
  if (tools === undefined) return names;
  if (!Array.isArray(tools)) throw invalid('tools: Input should be a valid list');
  tools.forEach((tool: unknown, i) => {
    const t = tool as { name?: unknown; input_schema?: { type?: unknown } };
    if (typeof t?.name !== 'string' || !/^[a-zA-Z0-9_-]{1,128}$/.test(t.name))
      throw invalid(`tools.${i}.name: String should match pattern '^[a-zA-Z0-9_-]{1,128}$'`);
    if (t.input_schema?.type !== 'object') throw invalid(`tools.${i}.input_schema.type: Input should be 'object'`);
    if (names.has(t.name)) throw invalid(`tools: Tool names must be unique.`);
    names.add(t.name);
  });
  return names;
}

function validateMessages(messages: unknown[], invalid: (message: string) => Rejection): void {
  if (messages.length === 0) throw invalid('messages: at least one message is required');
  let previous: { role: string; toolUses: string[] } | undefined;
  messages.forEach((message: unknown, i) => {
    const m = message as { role?: unknown; content?: unknown };
    if (m?.role === 'system') {
      throw invalid('messages: Unexpected role "system". The Messages API accepts a top-level `system` parameter, not "system" as an input message role.');
    }
    if (m?.role !== 'user' && m?.role !== 'assistant') throw invalid(`messages.${i}.role: Input should be 'user' or 'assistant'`);
    if (previous !== undefined && previous.role === m.role) {
      throw invalid(`messages: roles must alternate between "user" and "assistant", but found multiple "${m.role}" roles in a row`);
    }
    const last = i === messages.length - 1;
    const blocks = typeof m.content === 'string' ? [{ type: 'text', text: m.content }] : m.content;
    if (!Array.isArray(blocks)) throw invalid(`messages.${i}.content: Input should be a valid string or list`);
    if (blocks.length === 0 && !(last && m.role === 'assistant')) {
      throw invalid(`messages.${i}: all messages must have non-empty content except for the optional final assistant message`);
    }
    const toolUses: string[] = [];
    const results: string[] = [];
    blocks.forEach((block: unknown, j) => {
      const where = `messages.${i}.content.${j}`;
      const bl = block as Record<string, unknown>;
      switch (bl?.type) {
        case 'text':
          if (typeof bl.text !== 'string' || bl.text === '') throw invalid('messages: text content blocks must be non-empty');
          if (last && m.role === 'assistant' && j === blocks.length - 1 && /\s$/.test(bl.text))
            throw invalid('messages: final assistant content cannot end with trailing whitespace');
          break;
        case 'image': {
          const source = bl.source as { type?: unknown; media_type?: unknown; data?: unknown } | undefined;
          if (m.role !== 'user') throw invalid(`${where}: image blocks are only allowed in user messages`);
          if (source?.type !== 'base64') throw invalid(`${where}.image.source.type: Input should be 'base64'`);
          if (!imageTypes.has(String(source.media_type)))
            throw invalid(`${where}.image.source.base64.media_type: Input should be 'image/jpeg', 'image/png', 'image/gif' or 'image/webp'`);
          if (typeof source.data !== 'string' || !/^[A-Za-z0-9+/]+={0,2}$/.test(source.data))
            throw invalid(`${where}.image.source.base64.data: invalid base64 data`);
          break;
        }
        case 'tool_use':
          if (m.role !== 'assistant') throw invalid(`${where}: tool_use blocks are only allowed in assistant messages`);
          if (typeof bl.id !== 'string' || typeof bl.name !== 'string') throw invalid(`${where}.tool_use: id and name are required`);
          if (typeof bl.input !== 'object' || bl.input === null || Array.isArray(bl.input))
            throw invalid(`${where}.tool_use.input: Input should be a valid dictionary`);
          toolUses.push(bl.id);
          break;
        case 'tool_result':
          if (m.role !== 'user') throw invalid(`${where}: tool_result blocks are only allowed in user messages`);
          if (previous?.role !== 'assistant' || !previous.toolUses.includes(String(bl.tool_use_id))) {
            throw invalid(
              `${where}: unexpected \`tool_use_id\` found in \`tool_result\` blocks: ${String(bl.tool_use_id)}. Each \`tool_result\` block must have a corresponding \`tool_use\` block in the previous message.`,
            );
          }
          if (results.length !== j) throw invalid(`${where}: tool_result blocks must come first in the user message content`);
          results.push(String(bl.tool_use_id));
          break;
        default:
          throw invalid(`${where}.type: Input tag ${JSON.stringify(bl?.type)} does not match any of the expected tags`);
      }
    });
    if (previous?.role === 'assistant' && previous.toolUses.length > 0) {
      const missing = previous.toolUses.filter((id) => !results.includes(id));
      if (missing.length > 0) {
        throw invalid(
          `messages.${i - 1}: \`tool_use\` ids were found without \`tool_result\` blocks immediately after: ${missing.join(', ')}. Each \`tool_use\` block must have a corresponding \`tool_result\` block in the next message.`,
        );
      }
    }
    previous = { role: m.role, toolUses };
  });
}
