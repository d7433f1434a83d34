/**
 * Latency at one connection, with microsecond resolution (autocannon's histogram has whole
 * milliseconds): requests one after another on a single keep-alive connection (undici Pool,
 * connections 1), after a warm-up. For JSON: total time. For streams: time to the first
 * complete SSE event and total time. Every response is checked: JSON must carry the fake's
 * reply, a stream must end with `data: [DONE]` and its deltas must add up to the whole reply.
 *
 * Also a correctness check under concurrency (`checkConcurrent`), since autocannon cannot look
 * into streamed bodies.
 */
import { Pool } from 'undici';
import { REPLY, STREAM_TEXT } from './upstream.js';

export interface BenchRequest {
  /** e.g. /v1/chat/completions */
  path: string;
  headers: Record<string, string>;
  body: string;
  stream: boolean;
}

export interface Sample {
  ok: boolean;
  error?: string;
  status: number;
  totalMs: number;
  /** Streams: time to the first complete SSE event. */
  firstEventMs?: number;
  /** Streams: time to the first event with non-empty content. */
  firstContentMs?: number;
  /** Streams: number of `data:` events, [DONE] included. */
  events?: number;
  /** Streams: number of body chunks received (≈ reads from the socket). */
  chunks?: number;
  /** Value of x-interference-overhead-ms, when the response has it. */
  overheadMs?: number;
  /** x-interference-attempts, when present. */
  attempts?: string;
}

export interface Stats {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export function stats(values: readonly number[]): Stats | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const at = (p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
  return {
    n: sorted.length,
    min: sorted[0] as number,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: sorted[sorted.length - 1] as number,
    mean: sorted.reduce((sum, v) => sum + v, 0) / sorted.length,
  };
}

function headerValue(headers: Record<string, string | string[] | undefined>, name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/** Checks a finished JSON body; returns an error message or undefined. */
function checkJson(text: string): string | undefined {
  try {
    const parsed = JSON.parse(text) as { choices?: Array<{ message?: { content?: unknown } }> };
    const content = parsed.choices?.[0]?.message?.content;
    return content === REPLY ? undefined : `unexpected content ${JSON.stringify(content)}`;
  } catch {
    return `invalid JSON: ${text.slice(0, 200)}`;
  }
}

/** Checks a finished SSE body: all deltas present, ends with [DONE]. */
function checkStream(text: string): { error?: string; events: number } {
  let events = 0;
  let content = '';
  let error: string | undefined;
  for (const line of text.split('\n')) {
    if (!line.startsWith('data:')) continue;
    events++;
    const data = line.slice(5).trim();
    if (data === '[DONE]') continue;
    try {
      const chunk = JSON.parse(data) as { choices?: Array<{ delta?: { content?: unknown } }> };
      const piece = chunk.choices?.[0]?.delta?.content;
      if (typeof piece === 'string') content += piece;
    } catch {
      error ??= `invalid event JSON: ${data.slice(0, 200)}`;
    }
  }
  if (!/data: \[DONE\]\s*$/.test(text)) error ??= `stream does not end with data: [DONE] (…${JSON.stringify(text.slice(-80))})`;
  if (content !== STREAM_TEXT) error ??= `stream content ${JSON.stringify(content)} ≠ ${JSON.stringify(STREAM_TEXT)}`;
  return error === undefined ? { events } : { error, events };
}

/** One request on `pool`, timed and checked. Never throws. */
export async function once(pool: Pool, request: BenchRequest): Promise<Sample> {
  const start = performance.now();
  let status = 0;
  try {
    const response = await pool.request({ path: request.path, method: 'POST', headers: request.headers, body: request.body });
    status = response.statusCode;
    const overhead = headerValue(response.headers, 'x-interference-overhead-ms');
    const attempts = headerValue(response.headers, 'x-interference-attempts');
    let text = '';
    let firstEventMs: number | undefined;
    let firstContentMs: number | undefined;
    let chunks = 0;
    for await (const chunk of response.body) {
      chunks++;
      text += (chunk as Buffer).toString();
      if (request.stream) {
        if (firstEventMs === undefined && text.includes('\n\n')) firstEventMs = performance.now() - start;
        if (firstContentMs === undefined && /"content":"[^"]/.test(text)) firstContentMs = performance.now() - start;
      }
    }
    const totalMs = performance.now() - start;
    const sample: Sample = { ok: true, status, totalMs };
    if (overhead !== undefined && overhead !== '' && Number.isFinite(Number(overhead))) sample.overheadMs = Number(overhead);
    if (attempts !== undefined) sample.attempts = attempts;
    let error: string | undefined;
    if (status < 200 || status > 299) error = `HTTP ${status}: ${text.slice(0, 200)}`;
    else if (request.stream) {
      const checked = checkStream(text);
      sample.events = checked.events;
      sample.chunks = chunks;
      if (firstEventMs !== undefined) sample.firstEventMs = firstEventMs;
      if (firstContentMs !== undefined) sample.firstContentMs = firstContentMs;
      error = checked.error;
    } else error = checkJson(text);
    if (error !== undefined) {
      sample.ok = false;
      sample.error = error;
    }
    return sample;
  } catch (error) {
    return { ok: false, status, totalMs: performance.now() - start, error: error instanceof Error ? error.message : String(error) };
  }
}

export interface SequentialResult {
  total?: Stats;
  firstEvent?: Stats;
  firstContent?: Stats;
  overhead?: Stats;
  /** Smallest and largest number of SSE events in one stream. */
  events?: { min: number; max: number };
  chunks?: Stats;
  ok: number;
  failed: number;
  errors: string[];
  /** Distinct x-interference-attempts values seen, with counts. */
  attempts: Record<string, number>;
  /** The first few samples in order (failover: before a breaker opens). */
  firstSamples: number[];
}

function summarize(samples: readonly Sample[]): SequentialResult {
  const good = samples.filter((s) => s.ok);
  const errors = [...new Set(samples.filter((s) => !s.ok).map((s) => s.error ?? 'error'))].slice(0, 5);
  const attempts: Record<string, number> = {};
  for (const s of samples) if (s.attempts !== undefined) attempts[s.attempts] = (attempts[s.attempts] ?? 0) + 1;
  const events = good.map((s) => s.events).filter((e): e is number => e !== undefined);
  const result: SequentialResult = {
    ok: good.length,
    failed: samples.length - good.length,
    errors,
    attempts,
    firstSamples: samples.slice(0, 5).map((s) => s.totalMs),
  };
  const put = <K extends 'total' | 'firstEvent' | 'firstContent' | 'overhead' | 'chunks'>(key: K, values: number[]): void => {
    const s = stats(values);
    if (s !== undefined) result[key] = s;
  };
  put(
    'total',
    good.map((s) => s.totalMs),
  );
  put(
    'firstEvent',
    good.map((s) => s.firstEventMs).filter((v): v is number => v !== undefined),
  );
  put(
    'firstContent',
    good.map((s) => s.firstContentMs).filter((v): v is number => v !== undefined),
  );
  put(
    'overhead',
    samples.map((s) => s.overheadMs).filter((v): v is number => v !== undefined),
  );
  put(
    'chunks',
    good.map((s) => s.chunks).filter((v): v is number => v !== undefined),
  );
  if (events.length > 0) result.events = { min: Math.min(...events), max: Math.max(...events) };
  return result;
}

export interface SequentialTarget {
  key: string;
  origin: string;
  request: BenchRequest;
  samples: number;
  warmup: number;
}

/**
 * Measures every target at one connection, interleaved: `rounds` rounds, each giving every
 * target its share of samples, so that machine noise hits all of them alike.
 */
export async function measureSequential(
  targets: readonly SequentialTarget[],
  rounds: number,
  progress: (line: string) => void,
): Promise<Map<string, SequentialResult>> {
  const pools = new Map<string, Pool>();
  const collected = new Map<string, Sample[]>();
  try {
    for (const target of targets) {
      const pool = new Pool(target.origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
      pools.set(target.key, pool);
      collected.set(target.key, []);
      for (let i = 0; i < target.warmup; i++) await once(pool, target.request);
    }
    for (let round = 0; round < rounds; round++) {
      for (const target of targets) {
        const pool = pools.get(target.key) as Pool;
        const into = collected.get(target.key) as Sample[];
        const share = Math.ceil(target.samples / rounds);
        for (let i = 0; i < share && into.length < target.samples; i++) into.push(await once(pool, target.request));
      }
      progress(`  c=1 round ${round + 1}/${rounds} done`);
    }
  } finally {
    await Promise.all([...pools.values()].map((pool) => pool.close()));
  }
  const results = new Map<string, SequentialResult>();
  for (const [key, samples] of collected) results.set(key, summarize(samples));
  return results;
}

/** Sequential samples on one fresh connection, no warm-up (failover: the first requests matter). */
export async function measureSeries(origin: string, request: BenchRequest, samples: number): Promise<SequentialResult> {
  const pool = new Pool(origin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  const collected: Sample[] = [];
  try {
    for (let i = 0; i < samples; i++) collected.push(await once(pool, request));
  } finally {
    await pool.close();
  }
  return summarize(collected);
}

export interface ConcurrentCheck {
  connections: number;
  requests: number;
  ok: number;
  failed: number;
  errors: string[];
  events?: { min: number; max: number };
  seconds: number;
}

/** `total` requests over `connections` concurrent keep-alive connections, every response checked. */
export async function checkConcurrent(origin: string, request: BenchRequest, connections: number, total: number): Promise<ConcurrentCheck> {
  const pool = new Pool(origin, { connections, pipelining: 1, keepAliveTimeout: 60_000 });
  const samples: Sample[] = [];
  let issued = 0;
  const start = performance.now();
  try {
    await Promise.all(
      Array.from({ length: connections }, async () => {
        while (issued < total) {
          issued++;
          samples.push(await once(pool, request));
        }
      }),
    );
  } finally {
    await pool.close();
  }
  const summary = summarize(samples);
  const check: ConcurrentCheck = {
    connections,
    requests: samples.length,
    ok: summary.ok,
    failed: summary.failed,
    errors: summary.errors,
    seconds: (performance.now() - start) / 1000,
  };
  if (summary.events !== undefined) check.events = summary.events;
  return check;
}
