/**
 * A fake Gradio server hosting Hugging Face Spaces for tests. Space `owner/name` lives under
 * `<url>/owner/name`, followed by gradio's paths (`/gradio_api/...`, or gradio-4 root paths).
 * Both the two-step call protocol and the queue protocol are served, byte for byte as gradio writes
 * them (see /work/shared/notes/upstream-protocols.md §4). Listens on 127.0.0.1 only.
 */
import http from 'node:http';
import { randomBytes, randomInt, randomUUID } from 'node:crypto';
import zlib from 'node:zlib';
import { readBody, serveOnLoopback } from '../support/loopback.js';

export type GradioBehaviour =
  | { kind: 'ok' }
  | { kind: 'queue-full' } // the POST gets 503 {"detail":"Queue is full. ..."}
  | { kind: 'zerogpu-quota' } // the job fails with ZEROGPU_QUOTA_MESSAGE
  | { kind: 'error-null' } // the job fails without a message (gradio ≤5 `data: null`)
  | { kind: 'unexpected-error' } // "Server stopped unexpectedly."
  | { kind: 'hang' } // the event stream sends heartbeats only
  | { kind: 'http-status'; status: number; body?: string }; // the POST answers this status

export interface SpaceSpec {
  /** 'owner/name', e.g. 'black-forest-labs/FLUX.1-schnell'. */
  space: string;
  /** The protocol the gateway is expected to use; both are served anyway. */
  protocol: 'call' | 'queue';
  /** Call protocol api name (default 'infer'); another name gets 500 like FnIndexInferError. */
  apiName?: string;
  /** Queue protocol fn_index (default 2); another gets 500. */
  fnIndex?: number;
  /** Output file bytes (default TINY_PNG); name and mime come from the magic bytes. */
  image?: Buffer;
  /** Default true: routes under /gradio_api; false: gradio-4 root paths. */
  gradioPrefix?: boolean;
  /** Default ok. `index`: 0-based count of jobs submitted to this Space (call POSTs and queue joins that passed validation). */
  behaviour?: GradioBehaviour | ((index: number) => GradioBehaviour);
  /** Heartbeat interval while working (default 20). */
  heartbeatMs?: number;
  /** Simulated generation time (default 30), with progress messages in between on the queue protocol. */
  workMs?: number;
  /** When set, every route of the Space requires `Authorization: Bearer <token>`, else 401. */
  token?: string;
  /** Position of the seed input (randomize_seed follows it): 1 for FLUX (default), 2 for SD 3.5. */
  seedIndex?: number;
}

export interface GradioRequest {
  /** The Space the path belongs to, or '' when it matched none. */
  space: string;
  method: string;
  /** The request target as received (path and query). */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** Parsed JSON, or undefined when the body was empty or not JSON. */
  body: unknown;
  raw: string;
}

export interface GradioFake {
  /** http://127.0.0.1:PORT: the base URL the gateway gets. */
  url: string;
  requests: GradioRequest[];
  setBehaviour(space: string, behaviour: SpaceSpec['behaviour']): void;
  /** Event streams currently open. */
  openStreams(): number;
  close(): Promise<void>;
}

/** The text a ZeroGPU Space fails with when the caller's quota is used up. */
export const ZEROGPU_QUOTA_MESSAGE =
  'You have exceeded your GPU quota (60s requested vs. 56s left). <a href="https://huggingface.co/join" target="_blank">Create a free account</a> to get more usage quota.';
const SERVER_STOPPED = 'Server stopped unexpectedly.';
const QUEUE_FULL = 'Queue is full. Max size is 20 and size is 20.';
const DEFAULT_STEPS = 4;

function pngChunk(type: string, data: Buffer): Buffer {
  const typed = Buffer.concat([Buffer.from(type, 'latin1'), data]);
  const out = Buffer.alloc(typed.length + 8);
  out.writeUInt32BE(data.length, 0);
  typed.copy(out, 4);
  out.writeUInt32BE(zlib.crc32(typed), typed.length + 4);
  return out;
}

/** A valid 1x1 8-bit RGB PNG (one orange pixel). */
function buildTinyPng(): Buffer {
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]); // width 1, height 1, depth 8, RGB
  const scanline = Buffer.from([0, 0xff, 0x66, 0x00]); // filter byte 0, then R G B
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk('IHDR', ihdr),
    pngChunk('IDAT', zlib.deflateSync(scanline)),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

export const TINY_PNG: Buffer = buildTinyPng();

interface OutputFile {
  name: string;
  mime: string;
  bytes: Buffer;
}

/** Name and mime from the magic bytes: PNG, JPEG, else WebP (what FLUX Spaces return). */
function describeImage(bytes: Buffer): OutputFile {
  const head = bytes.subarray(0, 4).toString('latin1');
  if (head.slice(1) === 'PNG') return { name: 'image.png', mime: 'image/png', bytes };
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return { name: 'image.jpg', mime: 'image/jpeg', bytes };
  return { name: 'image.webp', mime: 'image/webp', bytes };
}

/** Python's `json.dumps(value)`: `", "` and `": "` separators, ensure_ascii (non-ASCII as \uXXXX). */
export function pyJsonDumps(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (typeof value === 'string') {
    return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  }
  if (Array.isArray(value)) return `[${value.map(pyJsonDumps).join(', ')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>);
    return `{${entries.map(([k, v]) => `${pyJsonDumps(k)}: ${pyJsonDumps(v)}`).join(', ')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** The behaviours that reach an event stream (the others answer the POST). */
type JobBehaviour = Exclude<GradioBehaviour, { kind: 'queue-full' } | { kind: 'http-status' }>;

interface Job {
  id: string;
  data: unknown[];
  behaviour: JobBehaviour;
}

/** An open `text/event-stream` response whose timers die with it (on end, client disconnect or close()). */
class EventStream {
  private readonly timers = new Set<NodeJS.Timeout>();
  private done = false;
  readonly openedAt = Date.now();

  constructor(
    private readonly res: http.ServerResponse,
    onClose: () => void,
  ) {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    res.flushHeaders();
    res.once('close', () => {
      this.stop();
      onClose();
    });
  }

  write(text: string): void {
    if (!this.done) this.res.write(text);
  }

  end(): void {
    if (!this.done) this.res.end();
    this.stop();
  }

  after(ms: number, fn: () => void): void {
    if (!this.done) this.timers.add(setTimeout(() => !this.done && fn(), ms));
  }

  every(ms: number, fn: () => void): void {
    if (!this.done) this.timers.add(setInterval(() => !this.done && fn(), ms));
  }

  private stop(): void {
    this.done = true;
    for (const timer of this.timers) clearTimeout(timer); // clears intervals too
    this.timers.clear();
  }
}

interface Session {
  jobs: Map<string, Job>;
  stream?: EventStream;
}

function createSpace(spec: SpaceSpec) {
  if (!/^[^/\s]+\/[^/\s]+$/.test(spec.space)) throw new Error(`space must be 'owner/name': ${spec.space}`);
  const prefix = `/${spec.space}`;
  return {
    spec,
    prefix,
    /** Where gradio's routes start: '/owner/name/gradio_api', or '/owner/name' for gradio 4. */
    apiBase: spec.gradioPrefix === false ? prefix : `${prefix}/gradio_api`,
    apiName: spec.apiName ?? 'infer',
    fnIndex: spec.fnIndex ?? 2,
    heartbeatMs: spec.heartbeatMs ?? 20,
    workMs: spec.workMs ?? 30,
    image: describeImage(spec.image ?? TINY_PNG),
    behaviour: spec.behaviour,
    submitted: 0,
    calls: new Map<string, Job>(), // call protocol: event_id → job not yet streamed
    sessions: new Map<string, Session>(), // queue protocol: session_hash → pending jobs
    files: new Map<string, OutputFile>(), // file path → bytes
  };
}
type SpaceState = ReturnType<typeof createSpace>;

/** Sends `body` with content-type JSON when it parses as JSON, else Starlette's text/plain. */
function send(res: http.ServerResponse, status: number, body: string, extra?: Record<string, string>): void {
  let type = 'application/json';
  try {
    JSON.parse(body);
  } catch {
    type = 'text/plain; charset=utf-8';
  }
  res.writeHead(status, { 'content-type': type, 'content-length': String(Buffer.byteLength(body)), ...extra });
  res.end(body);
}

const sendJson = (res: http.ServerResponse, status: number, value: unknown): void => send(res, status, JSON.stringify(value));
const notFound = (res: http.ServerResponse): void => send(res, 404, '{"detail":"Not Found"}');
const methodNotAllowed = (res: http.ServerResponse, allow: string): void => send(res, 405, '{"detail":"Method Not Allowed"}', { allow });
const internalError = (res: http.ServerResponse): void => send(res, 500, 'Internal Server Error'); // FastAPI's unhandled error

/** FastAPI's 422 for a body that is not JSON, not an object, or whose `data` is not a list; null when valid. */
function bodyProblem(raw: string, body: unknown): unknown {
  const problem = (type: string, loc: (string | number)[], msg: string, input: unknown): unknown => ({
    detail: [{ type, loc, msg, input }],
  });
  if (body === undefined) return problem('json_invalid', ['body', 0], 'JSON decode error', {});
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return problem('model_attributes_type', ['body'], 'Input should be a valid dictionary or object to extract fields from', raw);
  }
  const data = (body as Record<string, unknown>).data;
  if (data === undefined) return problem('missing', ['body', 'data'], 'Field required', body);
  if (!Array.isArray(data)) return problem('list_type', ['body', 'data'], 'Input should be a valid list', data);
  return null;
}

/**
 * The seed a Space returns: FLUX input order is [prompt, seed, randomize_seed, …]; Stable
 * Diffusion 3.5's is [prompt, negative_prompt, seed, randomize_seed, …] (`seedIndex` 2).
 */
function outputSeed(data: unknown[], seedIndex: number): number {
  const sent = typeof data[seedIndex] === 'number' ? data[seedIndex] : 0;
  if (data[seedIndex + 1] !== true) return sent;
  let seed = randomInt(0, 2147483647);
  while (seed === sent) seed = randomInt(0, 2147483647);
  return seed;
}

function progressSteps(data: unknown[]): number {
  const n = data[5];
  return typeof n === 'number' && Number.isInteger(n) && n >= 1 && n <= 50 ? n : DEFAULT_STEPS;
}

export async function startGradioFake(spaces: SpaceSpec[]): Promise<GradioFake> {
  const states = new Map<string, SpaceState>(spaces.map((spec) => [spec.space, createSpace(spec)]));
  const requests: GradioRequest[] = [];
  const streams = new Set<EventStream>();
  let origin = '';

  const findSpace = (path: string): SpaceState | undefined => {
    for (const state of states.values()) if (path.startsWith(`${state.prefix}/`)) return state;
    return undefined;
  };

  const openStream = (res: http.ServerResponse, onClose: () => void): EventStream => {
    const stream: EventStream = new EventStream(res, () => {
      streams.delete(stream);
      onClose();
    });
    streams.add(stream);
    return stream;
  };

  /** A fresh output file (new /tmp/gradio/<hash>/ path) and the outputs list `[FileData, seed]`. */
  const outputs = (state: SpaceState, job: Job): unknown[] => {
    const path = `/tmp/gradio/${randomBytes(20).toString('hex')}/${state.image.name}`;
    state.files.set(path, state.image);
    const url = `${origin}${state.apiBase}/file=${path}`;
    const file = { path, url, size: null, orig_name: state.image.name, mime_type: null, is_stream: false, meta: { _type: 'gradio.FileData' } };
    return [file, outputSeed(job.data, state.spec.seedIndex ?? 1)];
  };

  /** After validation: the POST-level behaviours; returns the job to run, or undefined when the POST was answered otherwise. */
  const submit = (state: SpaceState, res: http.ServerResponse, data: unknown[]): Job | undefined => {
    const { behaviour } = state;
    const index = state.submitted++;
    const b = typeof behaviour === 'function' ? behaviour(index) : (behaviour ?? { kind: 'ok' });
    if (b.kind === 'queue-full') return void sendJson(res, 503, { detail: QUEUE_FULL });
    if (b.kind === 'http-status') {
      const fallback = b.status === 500 ? 'Internal Server Error' : JSON.stringify({ detail: http.STATUS_CODES[b.status] ?? 'Error' });
      return void send(res, b.status, b.body ?? fallback);
    }
    const job: Job = { id: randomUUID().replace(/-/g, ''), data, behaviour: b };
    sendJson(res, 200, { event_id: job.id });
    return job;
  };

  const runCall = (state: SpaceState, job: Job, res: http.ServerResponse): void => {
    const stream = openStream(res, () => undefined);
    const write = (event: string, data: unknown): void => stream.write(`event: ${event}\ndata: ${pyJsonDumps(data)}\n\n`);
    const b = job.behaviour;
    if (b.kind === 'ok' || b.kind === 'hang') {
      stream.every(state.heartbeatMs, () => write('heartbeat', null));
      if (b.kind === 'ok') {
        stream.after(state.workMs, () => {
          write('complete', outputs(state, job));
          stream.end();
        });
      }
      return;
    }
    if (b.kind === 'zerogpu-quota') write('error', { error: ZEROGPU_QUOTA_MESSAGE, duration: null, visible: true, title: 'Error' });
    else if (b.kind === 'error-null') write('error', null);
    else write('error', SERVER_STOPPED);
    stream.end();
  };

  const runQueueJob = (state: SpaceState, session: Session, stream: EventStream, job: Job): void => {
    const send = (message: Record<string, unknown>): void => stream.write(`data: ${JSON.stringify(message)}\n\n`); // orjson: compact
    const b = job.behaviour;
    if (b.kind === 'hang') return; // only the stream's heartbeats
    if (b.kind === 'unexpected-error') {
      send({ msg: 'unexpected_error', event_id: null, message: SERVER_STOPPED, session_not_found: false, success: false });
      return stream.end();
    }
    const finish = (output: Record<string, unknown>, success: boolean, title: string | null): void => {
      send({ msg: 'process_completed', event_id: job.id, output, success, title });
      session.jobs.delete(job.id);
      if (session.jobs.size > 0) return;
      send({ msg: 'close_stream', event_id: null });
      stream.end();
    };
    send({ msg: 'estimation', event_id: job.id, rank: 0, queue_size: 1, rank_eta: null });
    send({ msg: 'process_starts', event_id: job.id, eta: null });
    if (b.kind === 'zerogpu-quota') {
      return finish({ error: ZEROGPU_QUOTA_MESSAGE, duration: null, visible: true, title: 'Error' }, false, 'Error');
    }
    if (b.kind === 'error-null') return finish({ error: null }, false, null);
    const steps = progressSteps(job.data);
    for (let i = 1; i <= steps; i++) {
      const progress_data = [{ index: i, length: steps, unit: 'steps', progress: null, desc: null }];
      stream.after(Math.floor((state.workMs * i) / (steps + 1)), () => send({ msg: 'progress', event_id: job.id, progress_data }));
    }
    stream.after(state.workMs, () => {
      const duration = (Date.now() - stream.openedAt) / 1000;
      const data = outputs(state, job);
      finish({ data, is_generating: false, duration, average_duration: duration, render_config: null, changed_state_ids: [] }, true, null);
    });
  };

  const route = (state: SpaceState, req: http.IncomingMessage, res: http.ServerResponse, url: URL, raw: string, body: unknown): void => {
    const method = req.method ?? 'GET';
    if (!url.pathname.startsWith(`${state.apiBase}/`)) return notFound(res);
    const sub = url.pathname.slice(state.apiBase.length);

    if (sub.startsWith('/file=')) {
      if (method !== 'GET' && method !== 'HEAD') return methodNotAllowed(res, 'GET, HEAD');
      let path = sub.slice('/file='.length);
      try {
        path = decodeURIComponent(path);
      } catch {
        // kept as sent
      }
      const file = state.files.get(path);
      if (file === undefined) return sendJson(res, 404, { detail: 'File not found' });
      res.writeHead(200, { 'content-type': file.mime, 'content-length': String(file.bytes.length), 'accept-ranges': 'bytes' });
      return void res.end(method === 'HEAD' ? undefined : file.bytes);
    }

    const post = /^\/call\/([^/]+)\/?$/.exec(sub);
    if (post !== null) {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      const problem = bodyProblem(raw, body);
      if (problem !== null) return sendJson(res, 422, problem);
      if (post[1] !== state.apiName) return internalError(res); // FnIndexInferError
      const job = submit(state, res, (body as { data: unknown[] }).data);
      if (job !== undefined) state.calls.set(job.id, job);
      return;
    }

    const get = /^\/call\/([^/]+)\/([^/]+)$/.exec(sub);
    if (get !== null) {
      if (method !== 'GET') return methodNotAllowed(res, 'GET');
      const job = state.calls.get(get[2] ?? '');
      if (job === undefined) return sendJson(res, 404, { detail: 'Session not found.' });
      state.calls.delete(job.id); // one stream per event
      return runCall(state, job, res);
    }

    if (sub === '/queue/join') {
      if (method !== 'POST') return methodNotAllowed(res, 'POST');
      const problem = bodyProblem(raw, body);
      if (problem !== null) return sendJson(res, 422, problem);
      const join = body as { data: unknown[]; session_hash?: unknown; fn_index?: unknown };
      if (typeof join.session_hash !== 'string') return sendJson(res, 400, { detail: 'Session hash not found.' });
      if (join.fn_index === undefined || join.fn_index === null) return sendJson(res, 400, { detail: 'No function index provided.' });
      if (join.fn_index !== state.fnIndex) return internalError(res); // FnIndexInferError
      const job = submit(state, res, join.data);
      if (job === undefined) return;
      let session = state.sessions.get(join.session_hash);
      if (session === undefined) {
        session = { jobs: new Map() };
        state.sessions.set(join.session_hash, session);
      }
      session.jobs.set(job.id, job);
      if (session.stream !== undefined) runQueueJob(state, session, session.stream, job);
      return;
    }

    if (sub === '/queue/data') {
      if (method !== 'GET') return methodNotAllowed(res, 'GET');
      const hash = url.searchParams.get('session_hash');
      if (hash === null) {
        return sendJson(res, 422, { detail: [{ type: 'missing', loc: ['query', 'session_hash'], msg: 'Field required', input: null }] });
      }
      const session = state.sessions.get(hash);
      if (session === undefined || session.stream !== undefined) return sendJson(res, 404, { detail: 'Session not found.' });
      const stream = openStream(res, () => state.sessions.delete(hash)); // ended or the client left: events cleaned
      session.stream = stream;
      stream.every(state.heartbeatMs, () => stream.write('data: {"msg":"heartbeat","event_id":null}\n\n'));
      for (const job of [...session.jobs.values()]) runQueueJob(state, session, stream, job);
      return;
    }
    return notFound(res);
  };

  const handle = (req: http.IncomingMessage, res: http.ServerResponse, raw: string): void => {
    const target = req.url ?? '/';
    const url = new URL(`http://fake.invalid${target.startsWith('/') ? '' : '/'}${target}`);
    let body: unknown;
    try {
      body = raw.length > 0 ? (JSON.parse(raw) as unknown) : undefined;
    } catch {
      body = undefined;
    }
    const state = findSpace(url.pathname);
    requests.push({ space: state?.spec.space ?? '', method: req.method ?? 'GET', path: target, headers: req.headers, body, raw });
    if (state === undefined) return notFound(res);
    const token = state.spec.token;
    if (token !== undefined && req.headers.authorization !== `Bearer ${token}`) {
      const detail = req.headers.authorization === undefined ? 'Unauthorized' : 'Invalid credentials in Authorization header';
      return sendJson(res, 401, { detail });
    }
    route(state, req, res, url, raw, body);
  };

  const server = http.createServer({ noDelay: true }, (req, res) => readBody(req, (raw) => handle(req, res, raw)));
  server.keepAliveTimeout = 30_000;
  const served = await serveOnLoopback(server);
  origin = served.origin;

  return {
    url: origin,
    requests,
    setBehaviour(space, behaviour) {
      const state = states.get(space);
      if (state === undefined) throw new Error(`the fake does not host ${space}`);
      state.behaviour = behaviour;
    },
    openStreams: () => streams.size,
    close: served.close,
  };
}
