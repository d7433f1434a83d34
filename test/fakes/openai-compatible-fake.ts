/**
 * A fake OpenAI-compatible upstream (OpenAI, Ollama /v1, llama.cpp llama-server, Hugging Face router)
 * for tests and benchmarks. Wire bytes come from ./fixtures/openai.ts; this file does HTTP, routing,
 * validation and failure behaviours. Listens on 127.0.0.1 only.
 */
import http from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';
import { countPromptWords, createWire, isRecord, rateLimitHeaders, splitReply, type ChatContext, type Flavor, type Reply } from './fixtures/openai.js';
import { listenOnLoopback, readBody, serveOnLoopback } from '../support/loopback.js';

export type { Flavor } from './fixtures/openai.js';

export type Behaviour =
  | { kind: 'ok' } // answer normally (JSON or SSE per request.stream)
  | { kind: 'status'; status: number; body?: string; headers?: Record<string, string> } // exact error response
  | { kind: 'rate-limit'; retryAfterSeconds: number } // 429 with the flavor's body, retry-after, x-ratelimit-*
  | { kind: 'hang' } // accept the request, never send headers
  | { kind: 'malformed' } // 200 application/json with a truncated JSON body
  | { kind: 'stream-break-before-content' } // 200 SSE, the role chunk, then the socket is destroyed
  | { kind: 'stream-break-after-content'; afterChunks?: number } // some content chunks, then the socket is destroyed
  | { kind: 'stream-error-event' } // 200 SSE, one content chunk, then `data: {"error":{…}}` and the end
  | { kind: 'stream-stall'; afterChunks: number } // some content chunks, then no more bytes
  | { kind: 'slow-stream'; delayMs: number }; // normal stream, delayMs between events

export interface FakeRequest {
  method: string;
  /** The request target as received (path and query). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined when the body was empty or not JSON. */
  body: unknown;
  raw: string;
}

export interface FakeOptions {
  flavor?: Flavor;
  /** When set, requests without `Authorization: Bearer <apiKey>` get the flavor's 401. */
  apiKey?: string;
  /** Model ids served; another model gets the flavor's model-not-found reply. Default: any model. */
  models?: string[];
  /**
   * Assistant text (default 'Hello from the fake upstream.'), streamed one word piece per event;
   * or the pieces themselves (e.g. ['Foo', '!'] to replay a recording).
   */
  reply?: string | readonly string[];
  /** Default ok. `index` is the 0-based count of requests received (any route), as in `requests`. */
  behaviour?: Behaviour | ((req: FakeRequest, index: number) => Behaviour);
  /** Path prefix before /chat/completions and /models, default '/v1'. */
  basePath?: string;
  /** Record requests in `requests` (default true); benchmarks turn it off. */
  record?: boolean;
}

export interface Fake {
  /** e.g. http://127.0.0.1:PORT/v1: what an OpenAI SDK calls baseURL. */
  url: string;
  origin: string;
  requests: FakeRequest[];
  /** Open sockets that have carried at least one request (a client's speculative spare connects are not counted). */
  openConnections(): number;
  /** Sockets that carried a request and were then closed by the client (not by the fake's breaks or close()). */
  closedConnections: number;
  setBehaviour(b: FakeOptions['behaviour']): void;
  close(): Promise<void>;
}

const OK: Behaviour = { kind: 'ok' };
const DEFAULT_REPLY = 'Hello from the fake upstream.';
const DEFAULT_BREAK_AFTER = 2;

export async function startOpenAICompatibleFake(options: FakeOptions = {}): Promise<Fake> {
  const reply = options.reply ?? DEFAULT_REPLY;
  const pieces = typeof reply === 'string' ? splitReply(reply) : reply;
  const pieceCount = pieces.length;
  const wire = createWire(options.flavor ?? 'openai', pieces);
  const basePath = (options.basePath ?? '/v1').replace(/\/+$/, '');
  const chatPath = `${basePath}/chat/completions`;
  const modelsPath = `${basePath}/models`;
  const served = options.models === undefined ? undefined : new Set(options.models);
  const modelIds = options.models ?? wire.defaultModels;
  const modelsBody = wire.modelsList(modelIds);
  const expectedAuth = options.apiKey === undefined ? undefined : `Bearer ${options.apiKey}`;
  const record = options.record !== false;

  let behaviour = options.behaviour;
  let received = 0;
  let closedByClient = 0;
  let closing = false;
  const requests: FakeRequest[] = [];
  const used = new Set<Socket>();
  const killedByFake = new WeakSet<Socket>();

  /** Sends `last` (or just the headers), then destroys the socket once the bytes are out. */
  const writeThenKill = (res: http.ServerResponse, last: string | undefined): void => {
    const socket = res.socket;
    if (socket === null) return;
    killedByFake.add(socket);
    if (last === undefined || last.length === 0) {
      res.flushHeaders();
      socket.end(); // flushes what was written, then FIN
    } else {
      res.write(last, () => socket.destroy());
    }
  };

  const send = (res: http.ServerResponse, reply: Reply, extra?: Record<string, string>): void => {
    const headers = wire.headers(reply.contentType);
    if (extra !== undefined) Object.assign(headers, extra);
    headers['content-length'] = String(Buffer.byteLength(reply.body));
    res.writeHead(reply.status, headers);
    res.end(reply.body);
  };

  /** Writes SSE events one res.write() each, then ends, destroys the socket, or stalls. */
  const sendEvents = (res: http.ServerResponse, events: readonly string[], then: 'end' | 'destroy' | 'stall', delayMs = 0): void => {
    res.writeHead(200, wire.headers(wire.sseContentType));
    if (delayMs <= 0) {
      const last = then === 'destroy' ? events.length - 1 : events.length;
      for (let i = 0; i < last; i++) res.write(events[i]);
      if (then === 'end') res.end();
      else if (then === 'destroy') writeThenKill(res, events[last]);
      else if (events.length === 0) res.flushHeaders();
      return;
    }
    let next = 0;
    let timer: NodeJS.Timeout | undefined;
    const step = (): void => {
      if (res.destroyed) return;
      const event = events[next++];
      if (then === 'destroy' && next >= events.length) return writeThenKill(res, event);
      if (event === undefined) {
        if (then === 'end') res.end();
        return;
      }
      res.write(event);
      timer = setTimeout(step, delayMs);
    };
    res.once('close', () => clearTimeout(timer));
    step();
  };

  const sendJsonBody = (res: http.ServerResponse, body: string): void => send(res, { status: 200, contentType: wire.jsonContentType, body });

  /** A non-streaming body that stops partway: headers promise the whole body, half of it is sent. */
  const sendPartialJson = (res: http.ServerResponse, body: string, sentChars: number, then: 'destroy' | 'stall'): void => {
    const headers = wire.headers(wire.jsonContentType);
    headers['content-length'] = String(Buffer.byteLength(body));
    res.writeHead(200, headers);
    const part = body.slice(0, sentChars);
    if (then === 'destroy') writeThenKill(res, part);
    else if (part.length === 0) res.flushHeaders();
    else res.write(part);
  };

  const answerChat = (res: http.ServerResponse, chat: Record<string, unknown>, b: Behaviour, ctx: ChatContext): void => {
    const streaming = chat.stream === true;
    if (b.kind === 'malformed') {
      const body = wire.chatJson(ctx);
      return sendJsonBody(res, body.slice(0, Math.floor(body.length / 2)));
    }
    if (!streaming) {
      const body = wire.chatJson(ctx);
      switch (b.kind) {
        case 'stream-break-before-content':
          return sendPartialJson(res, body, 0, 'destroy');
        case 'stream-break-after-content':
          return sendPartialJson(res, body, Math.floor(body.length / 2), 'destroy');
        case 'stream-stall':
          return sendPartialJson(res, body, Math.floor(body.length / 2), 'stall');
        case 'stream-error-event':
          return send(res, wire.error(500, ctx.model));
        case 'slow-stream': {
          const timer = setTimeout(
            () => {
              if (!res.destroyed) sendJsonBody(res, body);
            },
            b.delayMs * (ctx.count + 2),
          );
          res.once('close', () => clearTimeout(timer));
          return;
        }
        default:
          return sendJsonBody(res, body);
      }
    }
    const includeUsage = isRecord(chat.stream_options) && chat.stream_options.include_usage === true;
    const s = wire.stream(ctx, includeUsage);
    const full = (): string[] => {
      const events = [...s.prelude, ...s.contents, s.finish];
      if (s.usage !== null) events.push(s.usage);
      events.push(s.done);
      return events;
    };
    switch (b.kind) {
      case 'stream-break-before-content':
        return sendEvents(res, [s.roleOnly], 'destroy');
      case 'stream-break-after-content':
        return sendEvents(res, [...s.prelude, ...s.contents.slice(0, b.afterChunks ?? DEFAULT_BREAK_AFTER)], 'destroy');
      case 'stream-stall':
        return sendEvents(res, [...s.prelude, ...s.contents.slice(0, b.afterChunks)], 'stall');
      case 'stream-error-event':
        return sendEvents(res, [...s.prelude, ...s.contents.slice(0, 1), wire.midStreamError()], 'end');
      case 'slow-stream':
        return sendEvents(res, full(), 'end', b.delayMs);
      default:
        return sendEvents(res, full(), 'end');
    }
  };

  /** Shared by every route: the behaviours that do not depend on the answer's shape. Returns true when handled. */
  const applyGenericBehaviour = (res: http.ServerResponse, b: Behaviour, model: string): boolean => {
    switch (b.kind) {
      case 'status': {
        const reply = b.body === undefined ? wire.error(b.status, model) : { ...wire.error(b.status, model), body: b.body };
        send(res, { ...reply, status: b.status }, b.headers);
        return true;
      }
      case 'rate-limit':
        send(res, wire.rateLimited(model, b.retryAfterSeconds), rateLimitHeaders(b.retryAfterSeconds));
        return true;
      case 'hang':
        return true;
      default:
        return false;
    }
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string): void => {
    const method = req.method ?? 'GET';
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    const path = query === -1 ? target : target.slice(0, query);
    let body: unknown;
    let bodyIsJson = true;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw) as unknown;
      } catch {
        bodyIsJson = false;
      }
    }
    const fakeRequest: FakeRequest = { method, path: target, headers: req.headers, body, raw };
    const index = received++;
    if (record) requests.push(fakeRequest);

    const route = path === chatPath && method === 'POST' ? 'chat' : path === modelsPath && method === 'GET' ? 'models' : null;
    if (route === null) return send(res, wire.routeNotFound(method, path));
    if (expectedAuth !== undefined && req.headers.authorization !== expectedAuth) {
      return send(res, wire.unauthorized(req.headers.authorization));
    }

    if (route === 'models') {
      const b = resolveBehaviour(fakeRequest, index);
      if (applyGenericBehaviour(res, b, modelIds[0] ?? '')) return;
      return sendJsonBody(res, b.kind === 'malformed' ? modelsBody.slice(0, Math.floor(modelsBody.length / 2)) : modelsBody);
    }

    if (!bodyIsJson || !isRecord(body)) return send(res, wire.invalidRequest('json'));
    const { messages, model } = body;
    if (!Array.isArray(messages) || messages.length === 0) return send(res, wire.invalidRequest('messages'));
    const hasModel = typeof model === 'string' && model.length > 0;
    if (!hasModel && wire.requiresModel) return send(res, wire.invalidRequest('model'));
    const modelName = hasModel ? model : (modelIds[0] ?? '');
    if (hasModel && served !== undefined && !served.has(model)) return send(res, wire.modelNotFound(model));

    const b = resolveBehaviour(fakeRequest, index);
    if (applyGenericBehaviour(res, b, modelName)) return;
    const limit = maxTokens(body);
    const count = limit < pieceCount ? limit : pieceCount;
    const ctx: ChatContext = {
      id: wire.newId(),
      created: Math.floor(Date.now() / 1000),
      model: modelName,
      count,
      finishReason: count < pieceCount ? 'length' : 'stop',
      promptTokens: countPromptWords(messages),
    };
    answerChat(res, body, b, ctx);
  };

  const resolveBehaviour = (req: FakeRequest, index: number): Behaviour => (typeof behaviour === 'function' ? behaviour(req, index) : (behaviour ?? OK));

  const server = http.createServer({ noDelay: true }, (req, res) => {
    used.add(req.socket);
    readBody(req, (raw) => handle(req, res, raw));
  });
  // Longer than typical client pools (undici: 4 s) so an idle pooled socket is never closed under a request.
  server.keepAliveTimeout = 30_000;
  server.on('connection', (socket: Socket) => {
    let clientLeft = false;
    socket.once('end', () => {
      clientLeft = true;
      // HTTP clients do not half-close: the peer is gone, so is this socket (as real servers notice on their next write).
      socket.destroy();
    });
    socket.once('error', () => {
      clientLeft = true;
    });
    socket.once('close', () => {
      if (used.delete(socket) && clientLeft && !closing && !killedByFake.has(socket)) closedByClient++;
    });
  });

  const { origin, close } = await serveOnLoopback(server, { onClose: () => (closing = true) });

  return {
    url: origin + basePath,
    origin,
    requests,
    openConnections: () => used.size,
    get closedConnections() {
      return closedByClient;
    },
    setBehaviour(b) {
      behaviour = b;
    },
    close,
  };
}

/** `max_completion_tokens` (or the deprecated `max_tokens`) as a piece limit; Infinity when absent. */
function maxTokens(body: Record<string, unknown>): number {
  const value = body.max_completion_tokens ?? body.max_tokens;
  return typeof value === 'number' && Number.isFinite(value) ? Math.max(0, Math.floor(value)) : Infinity;
}

/** A http://127.0.0.1:PORT/v1 URL on which nothing listens (bound, then closed): "connection refused". */
export async function closedPortUrl(): Promise<string> {
  const probe = net.createServer();
  const port = await listenOnLoopback(probe);
  await new Promise<void>((resolve) => probe.close(() => resolve()));
  return `http://127.0.0.1:${port}/v1`;
}
