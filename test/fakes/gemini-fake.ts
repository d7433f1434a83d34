/**
 * A fake Google Gemini API (generativelanguage v1beta) for tests: `POST
 * /v1beta/models/<model>:generateContent` and `:streamGenerateContent?alt=sse`, answering with the
 * recorded bytes of ./fixtures/gemini.ts. It checks requests as the real API does where that
 * matters to an adapter: the key in `x-goog-api-key` (missing → 403, wrong → the recorded 400
 * API_KEY_INVALID), a key in the URL refused as a leak, `contents` present with roles `user` /
 * `model` and non-empty parts, no unknown fields in the body, function declarations' and
 * responseSchema's Schema keys within Gemini's subset. Listens on 127.0.0.1 only.
 */
import http from 'node:http';
import {
  apiKeyInvalid,
  deadlineExceeded,
  googleJson,
  internalError,
  invalidArgument,
  jsonHeaders,
  midStreamErrorLine,
  modelNotFound,
  permissionDenied,
  recordedFunctionCallJson,
  recordedFunctionCallStream,
  recordedTextJson,
  recordedTextStream,
  recordedThoughtStream,
  resourceExhausted,
  sseFrame,
  sseHeaders,
  unavailable,
  type ErrorReply,
  type Framing,
} from './fixtures/gemini.js';
import { readBody, serveOnLoopback } from '../support/loopback.js';

export type GeminiBehaviour =
  | { kind: 'text' } // the recorded text answer (JSON or SSE by method)
  | { kind: 'thoughts' } // the recorded thinking stream (includeThoughts), SSE only
  | { kind: 'function-call' } // the recorded function-call answer (JSON: one call; SSE: three parallel calls)
  | { kind: 'finish'; reason: string } // one short text answer ending with that finishReason
  | { kind: 'blocked'; reason?: string } // promptFeedback.blockReason, no candidates
  | { kind: 'error'; status: 400 | 403 | 404 | 429 | 500 | 503 | 504; retryDelay?: string; headers?: Record<string, string> }
  | { kind: 'raw'; status: number; headers: Record<string, string>; body: string } // exact bytes
  | { kind: 'mid-stream-error'; form: 'raw-line' | 'pretty' | 'data'; afterEvents?: number } // some events, then a Status, then EOF
  | { kind: 'cut'; afterEvents: number } // some events, then EOF without any finishReason
  | { kind: 'stall'; afterEvents: number } // some events, then silence (until the client leaves)
  | { kind: 'huge-event'; bytes: number } // one event of that many bytes of text
  | { kind: 'parts'; parts: readonly Record<string, unknown>[]; finishReason?: string }; // built, not recorded: these parts (JSON: one candidate; SSE: one event each, the last with finishReason, default STOP)

export interface GeminiFakeRequest {
  method: string;
  /** The request target as received (path and query). */
  path: string;
  /** The model named in the path. */
  model: string;
  action: string;
  headers: http.IncomingHttpHeaders;
  /** Parsed JSON body (undefined when not JSON). */
  body: unknown;
  raw: string;
}

export interface GeminiFakeOptions {
  /** The key expected in `x-goog-api-key`. */
  apiKey: string;
  /** Model ids served; others get the recorded 404. Default: any id starting with `gemini-`. */
  models?: readonly string[];
  behaviour?: GeminiBehaviour | ((request: GeminiFakeRequest, index: number) => GeminiBehaviour);
  /** SSE framing: `crlf` as recorded (default) or `lf`. */
  framing?: Framing;
}

export interface GeminiFake {
  /** `http://127.0.0.1:PORT/v1beta`: what the adapter's baseUrl is. */
  url: string;
  origin: string;
  requests: GeminiFakeRequest[];
  /** Requests that carried a key in the query string (each refused). */
  keysInUrl: number;
  /** Responses the client abandoned before their end (a cancelled stream). */
  abandoned: number;
  /** Resolves once `abandoned` reaches `count`. */
  waitForAbandoned(count: number): Promise<void>;
  setBehaviour(behaviour: GeminiFakeOptions['behaviour']): void;
  close(): Promise<void>;
}

/** Top-level fields of GenerateContentRequest (an unknown one is a 400, as on the real API). */
const requestFields = new Set(['contents', 'systemInstruction', 'generationConfig', 'tools', 'toolConfig', 'safetySettings', 'cachedContent', 'labels']);
const generationFields = new Set([
  'stopSequences',
  'responseMimeType',
  'responseSchema',
  'responseJsonSchema',
  'responseModalities',
  'candidateCount',
  'maxOutputTokens',
  'temperature',
  'topP',
  'topK',
  'seed',
  'presencePenalty',
  'frequencyPenalty',
  'responseLogprobs',
  'logprobs',
  'thinkingConfig',
  'mediaResolution',
]);
/** Gemini's Schema subset (js-genai `Schema`). */
const schemaFields = new Set([
  'type',
  'format',
  'title',
  'description',
  'nullable',
  'enum',
  'maxItems',
  'minItems',
  'properties',
  'required',
  'minProperties',
  'maxProperties',
  'minLength',
  'maxLength',
  'pattern',
  'example',
  'anyOf',
  'propertyOrdering',
  'default',
  'items',
  'minimum',
  'maximum',
]);
const partFields = new Set([
  'text',
  'thought',
  'thoughtSignature',
  'inlineData',
  'fileData',
  'functionCall',
  'functionResponse',
  'executableCode',
  'codeExecutionResult',
]);

export async function startGeminiFake(options: GeminiFakeOptions): Promise<GeminiFake> {
  let behaviour = options.behaviour ?? { kind: 'text' };
  const framing = options.framing ?? 'crlf';
  const requests: GeminiFakeRequest[] = [];
  let received = 0;
  let keysInUrl = 0;
  let abandoned = 0;
  let waiters: Array<{ count: number; resolve: () => void }> = [];

  const noteAbandoned = (): void => {
    abandoned += 1;
    const ready = waiters.filter((waiter) => abandoned >= waiter.count);
    waiters = waiters.filter((waiter) => abandoned < waiter.count);
    for (const waiter of ready) waiter.resolve();
  };

  const sendError = (res: http.ServerResponse, reply: ErrorReply, extra: Record<string, string> = {}): void => {
    res.writeHead(reply.status, { ...jsonHeaders, ...extra, 'content-length': String(Buffer.byteLength(reply.body)) });
    res.end(reply.body);
  };
  const sendJson = (res: http.ServerResponse, body: string): void => {
    res.writeHead(200, { ...jsonHeaders, 'content-length': String(Buffer.byteLength(body)) });
    res.end(body);
  };

  /** Writes events (one write each); then ends, stalls, or writes a tail and ends. */
  const sendEvents = (res: http.ServerResponse, events: readonly string[], then: 'end' | 'stall', tail?: string): void => {
    res.writeHead(200, sseHeaders);
    // A response the client drops before its end counts as abandoned.
    res.once('close', () => {
      if (!res.writableFinished) noteAbandoned();
    });
    for (const event of events) res.write(sseFrame(event, framing));
    if (tail !== undefined) res.write(tail);
    if (then === 'end') res.end();
    else res.flushHeaders();
  };

  const answer = (res: http.ServerResponse, request: GeminiFakeRequest, b: GeminiBehaviour): void => {
    const stream = request.action === 'streamGenerateContent';
    switch (b.kind) {
      case 'text':
        return stream ? sendEvents(res, recordedTextStream, 'end') : sendJson(res, recordedTextJson);
      case 'thoughts':
        return stream ? sendEvents(res, recordedThoughtStream, 'end') : sendJson(res, recordedTextJson);
      case 'function-call':
        return stream ? sendEvents(res, recordedFunctionCallStream, 'end') : sendJson(res, recordedFunctionCallJson);
      case 'finish': {
        const candidate = { content: { parts: [{ text: 'Partial answer' }], role: 'model' }, finishReason: b.reason, index: 0 };
        const usage = { promptTokenCount: 5, candidatesTokenCount: 2, totalTokenCount: 7 };
        if (!stream)
          return sendJson(res, googleJson({ candidates: [candidate], usageMetadata: usage, modelVersion: request.model, responseId: 'fakeFinish1' }));
        return sendEvents(res, [compact({ candidates: [candidate], usageMetadata: usage, modelVersion: request.model, responseId: 'fakeFinish1' })], 'end');
      }
      case 'blocked': {
        const value = {
          promptFeedback: { blockReason: b.reason ?? 'SAFETY', safetyRatings: [{ category: 'HARM_CATEGORY_DANGEROUS_CONTENT', probability: 'HIGH' }] },
          usageMetadata: { promptTokenCount: 9, totalTokenCount: 9 },
          modelVersion: request.model,
          responseId: 'fakeBlocked1',
        };
        return stream ? sendEvents(res, [compact(value)], 'end') : sendJson(res, googleJson(value));
      }
      case 'error':
        return sendError(res, errorReply(b.status, request.model, b.retryDelay ?? '37s'), b.headers);
      case 'raw':
        res.writeHead(b.status, b.headers);
        res.end(b.body);
        return;
      case 'mid-stream-error': {
        const events = recordedTextStream.slice(0, b.afterEvents ?? 2);
        if (b.form === 'data')
          return sendEvents(
            res,
            events,
            'end',
            sseFrame('{"error": {"code": 503,"message": "The model is overloaded. Please try again later.","status": "UNAVAILABLE"}}', framing),
          );
        if (b.form === 'pretty') return sendEvents(res, events, 'end', unavailable().body);
        return sendEvents(res, events, 'end', `${midStreamErrorLine}\n`);
      }
      case 'cut':
        return sendEvents(res, recordedTextStream.slice(0, b.afterEvents), 'end');
      case 'stall':
        return sendEvents(res, recordedTextStream.slice(0, b.afterEvents), 'stall');
      case 'huge-event':
        return sendEvents(res, [`{"candidates": [{"content": {"parts": [{"text": "${'x'.repeat(b.bytes)}"}],"role": "model"},"index": 0}]}`], 'end');
      case 'parts':
        return stream
          ? sendEvents(res, builtEvents(request.model, b.parts, b.finishReason ?? 'STOP'), 'end')
          : sendJson(res, builtJson(request.model, b.parts, b.finishReason ?? 'STOP'));
    }
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string): void => {
    const target = req.url ?? '/';
    const query = target.indexOf('?');
    const path = query === -1 ? target : target.slice(0, query);
    const params = new URLSearchParams(query === -1 ? '' : target.slice(query + 1));
    const match = /^\/v1beta\/models\/([^/:]+):(generateContent|streamGenerateContent)$/.exec(path);
    let body: unknown;
    try {
      body = raw === '' ? undefined : JSON.parse(raw);
    } catch {
      body = undefined;
    }
    const request: GeminiFakeRequest = {
      method: req.method ?? 'GET',
      path: target,
      model: match?.[1] ?? '',
      action: match?.[2] ?? '',
      headers: req.headers,
      body,
      raw,
    };
    requests.push(request);
    const index = received++;

    if (params.has('key')) {
      // The real API accepts ?key=; these tests treat it as a leak (keys in URLs reach logs).
      keysInUrl += 1;
      return sendError(res, invalidArgument('test fake: the API key was sent in the URL query string'));
    }
    if (match === null || req.method !== 'POST') {
      return sendError(
        res,
        {
          status: 404,
          body: `<!DOCTYPE html>\n<html lang=en><title>Error 404 (Not Found)!!1</title><p>The requested URL <code>${path}</code> was not found on this server.</p></html>\n`,
        },
        { 'content-type': 'text/html; charset=UTF-8' },
      );
    }
    const key = req.headers['x-goog-api-key'];
    if (key === undefined) return sendError(res, permissionDenied());
    if (key !== options.apiKey) return sendError(res, apiKeyInvalid());
    if (request.action === 'streamGenerateContent' && params.get('alt') !== 'sse') {
      return sendError(res, invalidArgument('test fake: only alt=sse streaming is served'));
    }
    if (req.headers['content-type']?.startsWith('application/json') !== true)
      return sendError(res, invalidArgument('test fake: content-type must be application/json'));
    if (body === undefined) return sendError(res, invalidArgument(`Invalid JSON payload received. Unexpected token.\n${raw.slice(0, 40)}\n^`));
    const problem = validate(body);
    if (problem !== undefined) return sendError(res, invalidArgument(problem));
    const served = options.models === undefined ? request.model.startsWith('gemini-') : options.models.includes(request.model);
    if (!served) return sendError(res, modelNotFound(request.model));
    answer(res, request, typeof behaviour === 'function' ? behaviour(request, index) : behaviour);
  };

  const server = http.createServer((req, res) => readBody(req, (raw) => handle(req, res, raw)));
  const { origin, close } = await serveOnLoopback(server);

  return {
    url: `${origin}/v1beta`,
    origin,
    requests,
    get keysInUrl() {
      return keysInUrl;
    },
    get abandoned() {
      return abandoned;
    },
    waitForAbandoned(count) {
      if (abandoned >= count) return Promise.resolve();
      return new Promise<void>((resolve) => waiters.push({ count, resolve }));
    },
    setBehaviour(next) {
      behaviour = next ?? { kind: 'text' };
    },
    close,
  };
}

function errorReply(status: number, model: string, retryDelay: string): ErrorReply {
  switch (status) {
    case 400:
      return apiKeyInvalid();
    case 403:
      return permissionDenied();
    case 404:
      return modelNotFound(model);
    case 429:
      return resourceExhausted(retryDelay);
    case 500:
      return internalError();
    case 503:
      return unavailable();
    default:
      return deadlineExceeded();
  }
}

/** Usage as Gemini reports it, cumulative: `done` of the answer's parts generated so far. */
function builtUsage(done: number): Record<string, unknown> {
  const candidates = 4 * done;
  return {
    promptTokenCount: 21,
    candidatesTokenCount: candidates,
    totalTokenCount: 21 + candidates,
    promptTokensDetails: [{ modality: 'TEXT', tokenCount: 21 }],
  };
}

/** A built answer (same layout as the recordings) with these parts in one candidate. */
function builtJson(model: string, parts: readonly Record<string, unknown>[], finishReason: string): string {
  const candidate = { content: { parts, role: 'model' }, finishReason, index: 0 };
  return googleJson({ candidates: [candidate], usageMetadata: builtUsage(parts.length), modelVersion: model, responseId: 'fakeBuiltAnswer1' });
}

/** The same answer streamed: one event per part, cumulative usage on each, finishReason on the last. */
function builtEvents(model: string, parts: readonly Record<string, unknown>[], finishReason: string): string[] {
  return parts.map((part, index) => {
    const last = index === parts.length - 1;
    const candidate = { content: { parts: [part], role: 'model' }, ...(last ? { finishReason } : {}), index: 0 };
    return compact({ candidates: [candidate], usageMetadata: builtUsage(index + 1), modelVersion: model, responseId: 'fakeBuiltAnswer1' });
  });
}

/** Gemini's compact event layout: `": "` after keys, `,` without a space. */
function compact(value: unknown): string {
  return JSON.stringify(value).replace(/"((?:[^"\\]|\\.)*)":/g, '"$1": ');
}

/** The real API's checks that an adapter can get wrong; a message as Gemini words it, or undefined. */
function validate(body: unknown): string | undefined {
  if (!isRecord(body)) return 'Invalid JSON payload received. Expected an object.';
  for (const key of Object.keys(body)) if (!requestFields.has(key)) return `Invalid JSON payload received. Unknown name "${key}": Cannot find field.`;
  const contents = body.contents;
  if (!Array.isArray(contents) || contents.length === 0) return '* GenerateContentRequest.contents: contents is not specified\n';
  for (const [index, content] of contents.entries()) {
    if (!isRecord(content)) return `Invalid JSON payload received. contents[${index}] is not an object.`;
    if (content.role !== 'user' && content.role !== 'model') return 'Please use a valid role: user, model.';
    if (!Array.isArray(content.parts) || content.parts.length === 0)
      return `* GenerateContentRequest.contents[${index}].parts: contents.parts must not be empty.\n`;
    for (const part of content.parts) {
      if (!isRecord(part)) return `Invalid JSON payload received. contents[${index}].parts is not a list of objects.`;
      for (const key of Object.keys(part))
        if (!partFields.has(key)) return `Invalid JSON payload received. Unknown name "${key}" at 'contents[${index}].parts[0]': Cannot find field.`;
      if (typeof part.text === 'string' && part.text === '' && part.thoughtSignature === undefined)
        return 'Unable to submit request because it has an empty text parameter. Add a value to the parameter and try again.';
    }
  }
  if (body.systemInstruction !== undefined) {
    const system = body.systemInstruction;
    if (!isRecord(system) || !Array.isArray(system.parts) || system.parts.length === 0)
      return '* GenerateContentRequest.system_instruction.parts: must not be empty.\n';
  }
  if (body.generationConfig !== undefined) {
    if (!isRecord(body.generationConfig)) return 'Invalid JSON payload received. generationConfig is not an object.';
    for (const key of Object.keys(body.generationConfig)) {
      if (!generationFields.has(key)) return `Invalid JSON payload received. Unknown name "${key}" at 'generation_config': Cannot find field.`;
    }
    const schema = body.generationConfig.responseSchema;
    if (schema !== undefined) {
      const bad = badSchemaKey(schema, 'generation_config.response_schema');
      if (bad !== undefined) return bad;
    }
  }
  if (body.tools !== undefined) {
    if (!Array.isArray(body.tools)) return 'Invalid JSON payload received. tools is not a list.';
    for (const [t, tool] of body.tools.entries()) {
      if (!isRecord(tool) || !Array.isArray(tool.functionDeclarations)) return `Invalid JSON payload received. tools[${t}] has no functionDeclarations.`;
      for (const [f, declaration] of tool.functionDeclarations.entries()) {
        if (!isRecord(declaration) || typeof declaration.name !== 'string')
          return `* GenerateContentRequest.tools[${t}].function_declarations[${f}].name: Name cannot be empty.\n`;
        if (declaration.parameters !== undefined) {
          const bad = badSchemaKey(declaration.parameters, `tools[${t}].function_declarations[${f}].parameters`);
          if (bad !== undefined) return bad;
        }
      }
    }
  }
  if (body.toolConfig !== undefined) {
    const config = isRecord(body.toolConfig) ? body.toolConfig.functionCallingConfig : undefined;
    if (!isRecord(config) || !['AUTO', 'ANY', 'NONE', 'VALIDATED', 'MODE_UNSPECIFIED'].includes(String(config.mode)))
      return "Invalid value at 'tool_config.function_calling_config.mode'.";
  }
  return undefined;
}

function badSchemaKey(schema: unknown, at: string): string | undefined {
  if (!isRecord(schema)) return `Invalid JSON payload received. ${at} is not an object.`;
  for (const key of Object.keys(schema))
    if (!schemaFields.has(key)) return `Invalid JSON payload received. Unknown name "${key}" at '${at}': Cannot find field.`;
  if (isRecord(schema.properties)) {
    for (const [name, value] of Object.entries(schema.properties)) {
      const bad = badSchemaKey(value, `${at}.properties[${name}].value`);
      if (bad !== undefined) return bad;
    }
  }
  if (schema.items !== undefined) {
    const bad = badSchemaKey(schema.items, `${at}.items`);
    if (bad !== undefined) return bad;
  }
  if (Array.isArray(schema.anyOf)) {
    for (const [index, branch] of schema.anyOf.entries()) {
      const bad = badSchemaKey(branch, `${at}.any_of[${index}]`);
      if (bad !== undefined) return bad;
    }
  }
  if (Array.isArray(schema.enum) && schema.enum.some((value) => typeof value !== 'string')) return `Invalid value at '${at}.enum': a string is expected.`;
  return undefined;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
