/**
 * Property-based fuzz test of every route (the reliability issue's requirement): at least 10 000
 * malformed, oversized, deeply nested, wrongly typed and unicode-heavy bodies, headers, paths and
 * methods, plus raw bytes that are not even HTTP. For every request: no 500 (502/503/504 only
 * where an upstream is involved), no crash, no hang, no hang-up; every error with a body is
 * OpenAI-shaped JSON; every event stream ends with `data: [DONE]`; the server still answers
 * GET /health after each batch.
 *
 * Nothing leaves 127.0.0.1: every built-in provider's base URL (and HUGGINGSPACE_BASE_URL) points
 * at a closed local port, requests that can generate go to the fake upstream or the embedded tiny
 * model, and the test refuses to start if the registry holds a provider it cannot redirect.
 *
 * Reproduce a failure: the message names the family, seed and path, e.g.
 *   FUZZ_ONLY=chat FUZZ_SEED=20240611 FUZZ_PATH=4 node --import tsx --test test/fuzz.test.ts
 * Other knobs: FUZZ_SCALE (multiplies every family's batch count, default 1), FUZZ_SHRINK=1 (let
 * fast-check shrink a failing batch), FUZZ_ONLY=chat,read,... (run only these families).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { Pool, type Dispatcher } from 'undici';
import { envName } from '../src/config.js';
import type { Registry } from '../src/core/registry.js';
import { anthropicDeclaration } from '../src/providers/anthropic/index.js';
import { geminiDeclaration } from '../src/providers/gemini/index.js';
import { openAICompatibleCatalog } from '../src/providers/openai-compatible/catalog.js';
import { startPollinationsFake, type PollinationsFake } from './fakes/image-fakes.js';
import { closedPortUrl, startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import {
  authRequests,
  chatRequests,
  imageRequests,
  methodRequests,
  oversizedRequests,
  rawBodyRequests,
  rawHttpRequests,
  readRequests,
  type FuzzCatalog,
  type FuzzRequest,
  type RawRequest,
} from './support/arbitraries.js';
import { startGateway, type Gateway } from './support/gateway.js';
import { rawExchange, type RawResult } from './support/http.js';
import { sseData } from './support/sse.js';

const SEED = process.env.FUZZ_SEED === undefined || process.env.FUZZ_SEED === '' ? 20_240_611 : Number(process.env.FUZZ_SEED);
const SCALE = Number(process.env.FUZZ_SCALE ?? '1') || 1;
const SHRINK = process.env.FUZZ_SHRINK === '1';
/** Comma-separated families to run (chat, images, raw-body, oversized, read, method, auth, raw-http); all by default. */
const ONLY = process.env.FUZZ_ONLY === undefined || process.env.FUZZ_ONLY === '' ? undefined : new Set(process.env.FUZZ_ONLY.split(','));
const skip = (family: string): boolean => ONLY !== undefined && !ONLY.has(family);
/** Requests in flight at once (one keep-alive connection each). */
const CONCURRENCY = 16;
const MAX_BODY_BYTES = 64 * 1024;
const REQUIRED_REQUESTS = 10_000;
const GATEWAY_KEY = 'fuzz-gateway-key-0123456789';
/** Batches of CONCURRENCY requests per family (× FUZZ_SCALE). */
const BATCHES = { chat: 215, images: 100, rawBody: 110, oversized: 12, read: 130, method: 60, auth: 30, rawHttp: 24 } as const;

/** A 1×1 PNG, stored in the gateway's image folder under the name the store would give it. */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==', 'base64');

interface Reply {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

interface Stats {
  sent: number;
  byFamily: Map<string, number>;
  /** `family status` → count. */
  byStatus: Map<string, number>;
  /** Event streams read to their end and checked. */
  streams: number;
}

const stats: Stats = { sent: 0, byFamily: new Map(), byStatus: new Map(), streams: 0 };
const crashes: string[] = [];
/**
 * The gateway's `"level":"error"` log lines (src/server/log.ts: an error that was not an ApiError,
 * answered with a 500, even when the client had already gone and never saw it).
 */
const serverErrors: string[] = [];
let requestIds = 0;

function bump(map: Map<string, number>, key: string): void {
  map.set(key, (map.get(key) ?? 0) + 1);
}

function clip(text: string, max = 300): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} chars)`;
}

function describeRequest(request: FuzzRequest): string {
  const body = request.body === undefined ? '' : typeof request.body === 'string' ? request.body : `bytes:${Buffer.from(request.body).toString('hex')}`;
  return `${request.family}: ${request.method} ${clip(JSON.stringify(request.path), 200)} headers=${clip(JSON.stringify(request.headers), 200)}${request.chunks === undefined ? '' : ` chunked×${request.chunks}`} body(${Buffer.byteLength(body)})=${clip(JSON.stringify(body))}`;
}

const firstHeader = (value: string | string[] | undefined): string => (Array.isArray(value) ? (value[0] ?? '') : (value ?? ''));

/** `{"error": {"message", "type", "param", "code"}}` and nothing else. */
function errorShapeProblem(text: string): string | undefined {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return `error body is not JSON: ${clip(JSON.stringify(text))}`;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return `error body is not an object: ${clip(text)}`;
  const keys = Object.keys(value);
  // Beside `error`, only the `model` and `provider` strings gpt4free's clients read.
  const extraOk = keys.every(
    (key) => key === 'error' || ((key === 'model' || key === 'provider') && typeof (value as Record<string, unknown>)[key] === 'string'),
  );
  if (!keys.includes('error') || !extraOk) return `error body has keys ${JSON.stringify(keys)}: ${clip(text)}`;
  const error = (value as { error: unknown }).error;
  if (typeof error !== 'object' || error === null || Array.isArray(error)) return `"error" is not an object: ${clip(text)}`;
  const fields = Object.keys(error).sort();
  if (JSON.stringify(fields) !== '["code","message","param","type"]') return `"error" has fields ${JSON.stringify(fields)}: ${clip(text)}`;
  const { message, type, param, code } = error as Record<string, unknown>;
  if (typeof message !== 'string' || message.length === 0) return `error.message is not a non-empty string: ${clip(text)}`;
  if (typeof type !== 'string' || type.length === 0) return `error.type is not a non-empty string: ${clip(text)}`;
  if (param !== null && typeof param !== 'string') return `error.param is neither a string nor null: ${clip(text)}`;
  if (code !== null && typeof code !== 'string') return `error.code is neither a string nor null: ${clip(text)}`;
  return undefined;
}

/** `Origin` values of the fuzz headers that no default configuration allows. */
const foreignOrigins = new Set(['null', 'http://evil.example', 'file://']);

/** POSTs to these may reach an upstream: 502/503/504 are legitimate answers there. */
function mayReachUpstream(request: FuzzRequest): boolean {
  return request.method === 'POST' && /^\/(?:v1\/chat\/completions|v1\/images\/generat|api\/)/.test(request.path);
}

/** What is wrong with this reply to this request (empty when nothing). */
function check(request: FuzzRequest, reply: Reply): string[] {
  const problems: string[] = [];
  const { status } = reply;
  const contentType = firstHeader(reply.headers['content-type']);
  const text = reply.body.toString('utf8');
  if (status >= 500 && !(mayReachUpstream(request) && (status === 502 || status === 503 || status === 504))) problems.push(`status ${status}`);
  // A page from a foreign origin is refused before anything else is looked at (the browser rule).
  const foreignPage = foreignOrigins.has(request.headers.origin ?? '');
  // (Requests Node itself cannot parse are answered before their headers are looked at.)
  const unparsed = status === 431 || status === 414 || (status === 400 && (text.includes('"bad_http"') || (request.method === 'HEAD' && text === '')));
  if (foreignPage && status !== 403 && !unparsed) problems.push(`status ${status} for a foreign web page, expected 403`);
  if (!foreignPage && request.expect !== undefined && !request.expect.includes(status)) {
    problems.push(`status ${status}, expected ${request.expect.join(' or ')}`);
  }
  if (status >= 400 && reply.body.length > 0) {
    if (!/^application\/json\b/.test(contentType)) problems.push(`error ${status} has content-type ${JSON.stringify(contentType)}`);
    const shape = errorShapeProblem(text);
    if (shape !== undefined) problems.push(`${status}: ${shape}`);
  }
  if (status >= 200 && status < 300 && request.method !== 'HEAD') {
    if (contentType.startsWith('text/event-stream')) {
      if (!text.endsWith('data: [DONE]\n\n')) problems.push(`event stream does not end with "data: [DONE]": …${clip(JSON.stringify(text.slice(-300)))}`);
      for (const data of sseData(text)) {
        if (data === '[DONE]') continue;
        let event: unknown;
        try {
          event = JSON.parse(data);
        } catch {
          problems.push(`event stream has a data line that is not JSON: ${clip(JSON.stringify(`data: ${data}`))}`);
          continue;
        }
        if (typeof event === 'object' && event !== null && 'error' in event) {
          const shape = errorShapeProblem(data);
          if (shape !== undefined) problems.push(`stream error event: ${shape}`);
        }
      }
    } else if (contentType.startsWith('application/json')) {
      try {
        JSON.parse(text);
      } catch {
        problems.push(`${status} JSON body does not parse: ${clip(JSON.stringify(text))}`);
      }
    }
  }
  if (status === 204 && reply.body.length > 0) problems.push('204 with a body');
  const requestId = reply.headers['x-request-id'];
  if (requestId !== undefined && !/^[\w.-]{1,128}$/.test(firstHeader(requestId)))
    problems.push(`x-request-id echoed unchecked: ${clip(JSON.stringify(requestId))}`);
  return problems;
}

/** Splits a body into `count` pieces, for a chunked upload. */
function pieces(body: string | Uint8Array, count: number): Buffer[] {
  const bytes = Buffer.from(body);
  const size = Math.max(1, Math.ceil(bytes.length / count));
  const out: Buffer[] = [];
  for (let at = 0; at < bytes.length; at += size) out.push(bytes.subarray(at, at + size));
  return out;
}

async function send(pool: Pool, request: FuzzRequest): Promise<Reply> {
  let body: Dispatcher.DispatchOptions['body'];
  if (request.body !== undefined) body = request.chunks === undefined ? request.body : Readable.from(pieces(request.body, request.chunks));
  const response = await pool.request({
    method: request.method as Dispatcher.HttpMethod,
    path: request.path,
    headers: request.headers,
    body,
    headersTimeout: 15_000,
    bodyTimeout: 15_000,
  });
  const bytes = Buffer.from(await response.body.arrayBuffer());
  return { status: response.statusCode, headers: response.headers, body: bytes };
}

// ---------------------------------------------------------------------------------------------
// Raw sockets

/** Checks each HTTP response in raw bytes: no 5xx but 502–504, error bodies OpenAI-shaped. */
function checkRaw(raw: RawRequest, reply: RawResult): string[] {
  const problems: string[] = [];
  let rest = reply.data;
  for (let responses = 0; rest.length > 0 && responses < 10; responses++) {
    const headEnd = rest.indexOf('\r\n\r\n');
    const head = (headEnd === -1 ? rest : rest.subarray(0, headEnd)).toString('latin1');
    const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(head);
    if (statusLine === null) {
      problems.push(`not an HTTP response: ${clip(JSON.stringify(head))}`);
      break;
    }
    const status = Number(statusLine[1]);
    if (status >= 500 && status !== 502 && status !== 503 && status !== 504) problems.push(`status ${status}`);
    if (headEnd === -1) break;
    const headers = new Map<string, string>();
    for (const line of head.split('\r\n').slice(1)) {
      const colon = line.indexOf(':');
      if (colon > 0) headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
    }
    let body: Buffer;
    const length = headers.get('content-length');
    const afterHead = rest.subarray(headEnd + 4);
    if (status < 200 || status === 204 || status === 304) body = Buffer.alloc(0);
    else if (length !== undefined) body = afterHead.subarray(0, Number(length));
    else if (/chunked/i.test(headers.get('transfer-encoding') ?? ''))
      break; // an event stream: only its status is checked here
    else body = afterHead;
    if (status >= 400 && body.length > 0) {
      if (!/^application\/json\b/.test(headers.get('content-type') ?? ''))
        problems.push(`error ${status} has content-type ${JSON.stringify(headers.get('content-type'))}`);
      const shape = errorShapeProblem(body.toString('utf8'));
      if (shape !== undefined) problems.push(`${status}: ${shape}`);
    }
    rest = afterHead.subarray(body.length);
  }
  return problems.map((problem) => `${raw.description}: ${problem} — request ${clip(JSON.stringify(Buffer.from(raw.bytes).toString('latin1')), 200)}`);
}

// ---------------------------------------------------------------------------------------------

/** The name the image store gives these bytes (their content hash). */
function storedName(bytes: Buffer, extension: string): string {
  return `${createHash('sha256').update(bytes).digest('hex').slice(0, 32)}.${extension}`;
}

/** Every built-in provider's base URL on a closed local port: nothing generated can reach the internet. */
function loopbackEnv(closedUrl: string, imagesDir: string): Record<string, string> {
  const closedOrigin = new URL(closedUrl).origin;
  const env: Record<string, string> = {
    INTERFERENCE_MAX_BODY_BYTES: String(MAX_BODY_BYTES),
    INTERFERENCE_IMAGES_DIR: imagesDir,
    INTERFERENCE_RETRIES: '0',
    INTERFERENCE_CONNECT_TIMEOUT_MS: '2000',
    HUGGINGSPACE_BASE_URL: closedOrigin,
  };
  for (const declaration of [...openAICompatibleCatalog, anthropicDeclaration, geminiDeclaration]) env[envName(declaration.id, 'BASE_URL')] = closedUrl;
  return env;
}

/** Refuses to fuzz a registry with a provider that could call out of the machine. */
function assertLoopbackOnly(registry: Registry): void {
  const builtIn = new Set([...openAICompatibleCatalog, anthropicDeclaration, geminiDeclaration].map((declaration) => declaration.id));
  for (const entry of registry.all()) {
    const provider = entry.provider;
    const baseUrl = (provider as { baseUrl?: unknown }).baseUrl;
    if (typeof baseUrl === 'string') {
      assert.match(baseUrl, /^http:\/\/127\.0\.0\.1:\d+(?:\/|$)/, `${provider.id} would call ${baseUrl}`);
      continue;
    }
    const known = builtIn.has(provider.id) || provider.id === 'Local' || provider.id === 'HuggingSpace' || provider.parent === 'HuggingSpace';
    assert.ok(known, `provider ${provider.id} is not one the fuzz test knows how to keep on loopback; point it at a closed port in loopbackEnv()`);
  }
}

describe('fuzz: hostile requests to every route', { timeout: 600_000 }, () => {
  let fake: Fake;
  let pollinations: PollinationsFake;
  let gateway: Gateway;
  let keyed: Gateway;
  let pool: Pool;
  let keyedPool: Pool;
  let catalog: FuzzCatalog;
  let port: number;
  const dirs: string[] = [];
  const started = performance.now();
  const onCrash =
    (kind: string) =>
    (error: unknown): void => {
      crashes.push(`${kind}: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
    };
  const onException = onCrash('uncaughtException');
  const onRejection = onCrash('unhandledRejection');

  const stderrWrite = process.stderr.write;

  before(async () => {
    process.on('uncaughtException', onException);
    process.on('unhandledRejection', onRejection);
    // Catch the gateway's internal-error log lines (it runs in this process), and still print them.
    process.stderr.write = function write(this: NodeJS.WriteStream, chunk: unknown, ...rest: unknown[]): boolean {
      const text = typeof chunk === 'string' ? chunk : Buffer.isBuffer(chunk) ? chunk.toString('utf8') : '';
      for (const line of text.split('\n')) if (line.includes('"level":"error"')) serverErrors.push(line);
      return (stderrWrite as (...args: unknown[]) => boolean).call(this, chunk, ...rest);
    } as typeof process.stderr.write;
    fake = await startOpenAICompatibleFake({ models: ['test-model'], record: false });
    // PollinationsAI on its fake (text and images), so images can succeed and be stored and served.
    pollinations = await startPollinationsFake();
    const closed = await closedPortUrl();
    const imagesDir = mkdtempSync(path.join(tmpdir(), 'interference-fuzz-images-'));
    const keyedImages = mkdtempSync(path.join(tmpdir(), 'interference-fuzz-images-'));
    dirs.push(imagesDir, keyedImages);
    const imageName = storedName(PNG, 'png');
    writeFileSync(path.join(imagesDir, imageName), PNG);
    const config = { providers: [{ id: 'Fake', api: 'openai', baseUrl: fake.url, models: ['test-model'] }] };
    gateway = await startGateway({ env: { ...loopbackEnv(closed, imagesDir), POLLINATIONSAI_BASE_URL: pollinations.url }, config });
    keyed = await startGateway({ env: { ...loopbackEnv(closed, keyedImages), INTERFERENCE_API_KEY: GATEWAY_KEY }, config });
    assertLoopbackOnly(gateway.registry);
    assertLoopbackOnly(keyed.registry);
    port = Number(new URL(gateway.url).port);
    pool = new Pool(gateway.url, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
    keyedPool = new Pool(keyed.url, { connections: CONCURRENCY, pipelining: 1, keepAliveTimeout: 30_000 });
    const models = (await (await gateway.get('/v1/models')).json()) as { data: Array<{ id: string }> };
    catalog = {
      providerIds: gateway.registry.all().map((entry) => entry.provider.id),
      modelIds: models.data.map((model) => model.id),
      imageName,
      maxBodyBytes: MAX_BODY_BYTES,
    };
    assert.ok(catalog.modelIds.length > 0);
    const image = await gateway.get(`/images/${imageName}`);
    assert.equal(image.status, 200, 'the stored test image is served');
    await image.arrayBuffer();
    process.stdout.write(`# fuzz seed ${SEED} (FUZZ_SEED=${SEED} to reproduce), scale ${SCALE}, concurrency ${CONCURRENCY}\n`);
  });

  after(async () => {
    await pool?.close();
    await keyedPool?.close();
    await gateway?.close();
    await keyed?.close();
    await fake?.close();
    await pollinations?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    process.off('uncaughtException', onException);
    process.off('unhandledRejection', onRejection);
    process.stderr.write = stderrWrite;
  });

  /** The server is alive and well: GET /health is a 200, and nothing crashed in the process. */
  async function assertAlive(where: string, target: Pool = pool): Promise<void> {
    assert.deepEqual(crashes, [], `the server crashed during ${where}`);
    // On the pool's keep-alive connections: a connection the batch left stuck shows up here too.
    let status: number;
    let text: string;
    try {
      const response = await target.request({ method: 'GET', path: '/health', headersTimeout: 10_000, bodyTimeout: 10_000 });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      assert.fail(`GET /health after ${where} got no answer: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
    }
    assert.equal(status, 200, `GET /health after ${where}: ${text}`);
  }

  /**
   * Runs a property; on failure, reports the failing requests (not fast-check's dump of the whole
   * batch) with the seed and path that replay it.
   */
  async function checkProperty<T>(family: string, property: fc.IAsyncProperty<T>, seed: number, batches: number): Promise<void> {
    const replay = process.env.FUZZ_PATH === undefined || process.env.FUZZ_PATH === '' ? {} : { path: process.env.FUZZ_PATH };
    const details = await fc.check(property, { seed, numRuns: Math.max(1, Math.round(batches * SCALE)), endOnFailure: !SHRINK, ...replay });
    if (!details.failed) return;
    const cause = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    const runPath = details.counterexamplePath ?? '';
    assert.fail(
      `${family}: batch ${details.numRuns} of ${Math.round(batches * SCALE)} failed (fast-check seed ${details.seed}, path "${runPath}"; replay just this batch: FUZZ_ONLY=${family} FUZZ_SEED=${SEED} FUZZ_PATH=${runPath})\n${cause}`,
    );
  }

  /** One fast-check property per family: each run is a batch of CONCURRENCY requests sent at once. */
  async function fuzz(family: string, arbitrary: fc.Arbitrary<FuzzRequest>, batches: number, target: () => Pool): Promise<void> {
    const seed = SEED + [...family].reduce((sum, char) => sum + char.charCodeAt(0), 0);
    const property = fc.asyncProperty(fc.array(arbitrary, { minLength: CONCURRENCY, maxLength: CONCURRENCY }), async (batch) => {
      const failures: string[] = [];
      const byId = new Map<string, FuzzRequest>();
      const logged = serverErrors.length;
      await Promise.all(
        batch.map(async (generated) => {
          // A request id of ours, when the request has none, to tie a server error log line to its request.
          const request: FuzzRequest =
            'x-request-id' in generated.headers ? generated : { ...generated, headers: { ...generated.headers, 'x-request-id': `fuzz-${++requestIds}` } };
          const id = request.headers['x-request-id'];
          if (id !== undefined) byId.set(id, request);
          stats.sent += 1;
          bump(stats.byFamily, request.family);
          let reply: Reply;
          try {
            reply = await send(target(), request);
          } catch (error) {
            failures.push(`${describeRequest(request)}\n  → no response: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
            return;
          }
          bump(stats.byStatus, `${request.family} ${reply.status}`);
          if (firstHeader(reply.headers['content-type']).startsWith('text/event-stream')) stats.streams += 1;
          const problems = check(request, reply);
          if (problems.length > 0)
            failures.push(
              `${describeRequest(request)}\n  → ${problems.join('\n  → ')}\n  response ${reply.status}: ${clip(JSON.stringify(reply.body.toString('utf8')))}`,
            );
        }),
      );
      for (const line of serverErrors.slice(logged)) {
        const id = /"id":"([^"]*)"/.exec(line)?.[1];
        const request = id === undefined ? undefined : byId.get(id);
        failures.push(`the server logged an internal error: ${clip(line, 500)}${request === undefined ? '' : `\n  for ${describeRequest(request)}`}`);
      }
      await assertAlive(`a ${family} batch`, target());
      if (failures.length > 0) throw new Error(`${failures.length} bad response(s):\n${failures.join('\n')}`);
    });
    await checkProperty(family, property, seed, batches);
  }

  test('almost valid chat bodies with wrong fields, to /v1/chat/completions and /api/{provider}/chat/completions', { skip: skip('chat') }, async () => {
    await fuzz('chat', chatRequests(catalog), BATCHES.chat, () => pool);
  });

  test('almost valid images bodies with wrong fields, to /v1/images/generate and /generations', { skip: skip('images') }, async () => {
    await fuzz('images', imageRequests(catalog), BATCHES.images, () => pool);
  });

  test('bodies that are not JSON objects, not UTF-8, or nested thousands deep: 400, never a crash', { skip: skip('raw-body') }, async () => {
    await fuzz('raw-body', rawBodyRequests(catalog), BATCHES.rawBody, () => pool);
  });

  test('bodies over INTERFERENCE_MAX_BODY_BYTES are a 413, declared or chunked', { skip: skip('oversized') }, async () => {
    await fuzz('oversized', oversizedRequests(catalog), BATCHES.oversized, () => pool);
  });

  test('GET/HEAD on every read route with odd ids, paths, query strings and headers', { skip: skip('read') }, async () => {
    await fuzz('read', readRequests(catalog), BATCHES.read, () => pool);
  });

  test('every method on every route, unknown routes, OPTIONS', { skip: skip('method') }, async () => {
    await fuzz('method', methodRequests(catalog), BATCHES.method, () => pool);
  });

  test('a gateway with its own key: junk authorization and x-api-key on every route', { skip: skip('auth') }, async () => {
    await fuzz('auth', authRequests(catalog, GATEWAY_KEY), BATCHES.auth, () => keyedPool);
  });

  test('malformed HTTP on raw sockets: the server answers 400 (or hangs up) and keeps serving', { skip: skip('raw-http') }, async () => {
    const seed = SEED + 7;
    const property = fc.asyncProperty(fc.array(rawHttpRequests(), { minLength: CONCURRENCY, maxLength: CONCURRENCY }), async (batch) => {
      const failures: string[] = [];
      const logged = serverErrors.length;
      await Promise.all(
        batch.map(async (raw) => {
          stats.sent += 1;
          bump(stats.byFamily, raw.family);
          // Up to 1.5 s for an answer; a keep-alive server may keep the socket open after it: stop once it is quiet for 300 ms.
          failures.push(...checkRaw(raw, await rawExchange(port, raw.bytes, { waitMs: 1500, quietMs: 300 })));
        }),
      );
      await new Promise((resolve) => setTimeout(resolve, 20)); // let the server log what the hang-ups did
      for (const line of serverErrors.slice(logged))
        failures.push(`the server logged an internal error: ${clip(line, 500)} (during a batch of: ${batch.map((raw) => raw.description).join('; ')})`);
      await assertAlive('a raw HTTP batch');
      if (failures.length > 0) throw new Error(`${failures.length} bad response(s):\n${failures.join('\n')}`);
    });
    await checkProperty('raw-http', property, seed, BATCHES.rawHttp);
  });

  test(`at least ${REQUIRED_REQUESTS} requests were sent, the server is still up`, async () => {
    await assertAlive('the whole fuzz run');
    const seconds = ((performance.now() - started) / 1000).toFixed(1);
    const families = [...stats.byFamily].map(([family, count]) => `${family}=${count}`).join(' ');
    process.stdout.write(`# fuzz: ${stats.sent} requests in ${seconds} s (${families}); ${stats.streams} event streams read to the end\n`);
    for (const family of stats.byFamily.keys()) {
      const statuses = [...stats.byStatus]
        .filter(([key]) => key.startsWith(`${family} `))
        .map(([key, count]): [string, number] => [key.slice(family.length + 1), count])
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([status, count]) => `${status}×${count}`)
        .join(' ');
      if (statuses !== '') process.stdout.write(`# fuzz statuses, ${family}: ${statuses}\n`);
    }
    if (SCALE >= 1 && ONLY === undefined) assert.ok(stats.sent >= REQUIRED_REQUESTS, `only ${stats.sent} requests were sent`);
  });
});

/**
 * Server bugs this fuzz test found (fixed in 51776ae and 7d28e3e), each pinned by its smallest
 * request: the properties above send these shapes too; these say what went wrong in a way a reader
 * can follow. A bug found later and not yet fixed goes here as a test.todo until it is.
 */
describe('fuzz: regressions it found', () => {
  /** A gateway of its own per test (an unhandled rejection in the server then belongs to that test). */
  async function withGateway(run: (gateway: Gateway) => Promise<void>, env: Record<string, string> = {}): Promise<void> {
    const fake = await startOpenAICompatibleFake({ models: ['test-model'], record: false });
    const imagesDir = mkdtempSync(path.join(tmpdir(), 'interference-fuzz-images-'));
    const gateway = await startGateway({
      env: { ...loopbackEnv(await closedPortUrl(), imagesDir), ...env },
      config: { providers: [{ id: 'Fake', api: 'openai', baseUrl: fake.url, models: ['test-model'] }] },
    });
    try {
      assertLoopbackOnly(gateway.registry);
      await run(gateway);
    } finally {
      await gateway.close();
      await fake.close();
      rmSync(imagesDir, { recursive: true, force: true });
    }
  }

  /** A POST with undici's default limits (16 KiB of response headers) and a short deadline: a hang fails fast. */
  async function post(gateway: Gateway, route: string, body: unknown): Promise<Reply> {
    const pool = new Pool(gateway.url, { connections: 1 });
    try {
      const response = await pool.request({
        method: 'POST',
        path: route,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: 5000,
        bodyTimeout: 5000,
      });
      return { status: response.statusCode, headers: response.headers, body: Buffer.from(await response.body.arrayBuffer()) };
    } finally {
      await pool.destroy();
    }
  }

  function assertAnswered(route: string, reply: Reply): void {
    assert.ok(reply.status < 500 || reply.status === 502, `${route}: ${reply.status} ${reply.body.toString()}`);
    if (reply.status >= 400) assert.equal(errorShapeProblem(reply.body.toString()), undefined);
  }

  const chat = { model: 'test-model', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] };

  test('an unknown provider id with a non-Latin-1 or control character next to a known one is answered (was: ERR_INVALID_CHAR on x-interference-unknown-providers, an unhandled rejection, no response ever)', () =>
    withGateway(async (gateway) => {
      for (const [route, body] of [
        ['/v1/chat/completions', { ...chat, provider: 'Fake 😀' }],
        ['/v1/chat/completions', { ...chat, provider: ['Fake', 'x\u0001'] }],
        ['/v1/chat/completions?provider=Fake%20%E4%B8%AD', chat],
        ['/api/Fake%20%F0%9F%98%80/chat/completions', chat],
        ['/v1/images/generate', { prompt: 'cat', provider: 'PollinationsAI 中文' }],
      ] as const) {
        const reply = await post(gateway, route, body);
        assertAnswered(route, reply);
        assert.match(firstHeader(reply.headers['x-interference-unknown-providers']), /^[\x20-\x7e]*$/);
      }
    }));

  test('an /api/{provider} segment with a bad percent-escape after decoding is a 4xx (was: 500, decoded twice, URIError)', () =>
    withGateway(async (gateway) => {
      for (const route of [
        '/api/%25/chat/completions',
        '/api/%25E0%25A4/chat/completions',
        '/api/Fake%25zz/v1/chat/completions',
        '/api/%FF%FE/chat/completions',
      ]) {
        const reply = await post(gateway, route, chat);
        assertAnswered(route, reply);
        assert.ok(reply.status < 500, `${route}: ${reply.status}`);
      }
    }));

  test('the first url-format request for n identical images is a 200 (was: 500, concurrent saves of the same bytes shared one .tmp name, rename ENOENT)', async () => {
    const pollinations = await startPollinationsFake();
    try {
      await withGateway(
        async (gateway) => {
          const reply = await post(gateway, '/v1/images/generate', { prompt: 'cat', model: 'flux', provider: 'PollinationsAI', n: 4, response_format: 'url' });
          assert.equal(reply.status, 200, reply.body.toString());
        },
        { POLLINATIONSAI_BASE_URL: pollinations.url },
      );
    } finally {
      await pollinations.close();
    }
  });

  test('JSON nested 10 000 deep in a field passed to the upstream is a 400 and does not open the provider\'s circuit (was: RangeError "Maximum call stack size exceeded" serialising the upstream body, a 502 upstream_bad_response blaming the provider, which never saw a byte, and after 3 of them its circuit open for every client: 503 for 30 s)', () =>
    withGateway(async (gateway) => {
      const deep = `${'['.repeat(10_000)}${']'.repeat(10_000)}`;
      const body = `{"provider":"Fake","model":"test-model","max_tokens":1,"messages":[{"role":"user","content":[{"type":"text","text":"hi","junk":${deep}}]}]}`;
      const statuses: number[] = [];
      for (let i = 0; i < 3; i++) {
        const response = await gateway.post('/v1/chat/completions', body);
        statuses.push(response.status);
        await response.arrayBuffer();
      }
      const after = await post(gateway, '/v1/chat/completions', chat);
      assert.deepEqual({ deep: statuses, next: after.status }, { deep: [400, 400, 400], next: 200 }, after.body.toString());
    }));

  test('unknown provider ids next to a known one keep the response headers small; thousands are a short 400 (was: all echoed in x-interference-unknown-providers, HeadersOverflowError in clients)', () =>
    withGateway(async (gateway) => {
      const longIds = Array.from({ length: 31 }, (_, i) => `${String(i).padStart(2, '0')}${'z'.repeat(62)}`).join(' ');
      const reply = await post(gateway, '/v1/chat/completions', { ...chat, provider: `Fake ${longIds}` });
      assert.equal(reply.status, 200, reply.body.toString());
      assert.ok(String(reply.headers['x-interference-unknown-providers']).length < 1024);
      const many = await post(gateway, '/v1/chat/completions', { ...chat, provider: `Fake ${'zz '.repeat(8000)}` });
      assert.equal(many.status, 400, many.body.toString());
      assert.ok(many.body.length < 1024, 'the error does not echo the ids');
    }));
});
