/**
 * The adversarial suite (issue "Trust no upstream and no client"): hostile upstreams (endless
 * streams, a line that never ends, a 100 MB body, keep-alives without content, `choices: [null]`,
 * redirects, gzip, 30 image URLs for one image, a Space whose output lives on another origin)
 * and hostile clients (slow headers, slow bodies, stalled uploads, a million provider ids, a
 * foreign web page posting text/plain).
 *
 * The gateway runs as a child process (test/support/server-process.ts) so that its memory can be
 * read: every attack runs under `watch()`, which samples the child's RSS every 100 ms and times
 * GET /health every 100 ms, and must leave the server under MAX_RSS_MB and /health under
 * MAX_HEALTH_MS (generous: the machine is shared). Each case also asserts what the client sees.
 * Small limits (1 MiB bodies and events, 1.5 s to first content, 1 s for client headers and
 * bodies) keep every attack short.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  REPLY_TEXT,
  startCanarySink,
  startEvilGradio,
  startEvilUpstream,
  type CanarySink,
  type EvilGradio,
  type EvilMode,
  type EvilResponse,
  type EvilUpstream,
} from './fakes/evil-upstream.js';
import { TINY_PNG } from './fakes/gradio-fake.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { assertErrorBody, isRecord, rawExchange, type ErrorBody } from './support/http.js';
import { startGatewayProcess, type GatewayProcess, type GatewayProcessOptions, type Watched } from './support/server-process.js';
import { parseSse, streamText } from './support/sse.js';
import { eventually } from './support/wait.js';

/** Bounds every attack must respect. */
const MAX_RSS_MB = 300;
const MAX_HEALTH_MS = 1000;
/** A gateway past this RSS is aborted mid-attack (and restarted before the next case). */
const RUNAWAY_MB = 600;
/** A gateway left above this after a case is restarted, so one unbounded case cannot fail the next ones. */
const RESTART_ABOVE_MB = 250;
const MiB = 1024 * 1024;

const BACKUP_REPLY = 'Backup answers in full.';
const messages = [{ role: 'user', content: 'Say hello' }];

/** Adds a line to the current test's report (the measured numbers, for whoever reads the run). */
let note: (message: string) => void = () => undefined;
beforeEach((t) => {
  if ('diagnostic' in t) note = (message) => t.diagnostic(message);
});

function assertBounded(watched: Watched<unknown>, what: string): void {
  note(`${what}: max RSS ${watched.maxRssMb} MB, slowest /health ${watched.maxHealthMs} ms (${watched.healthChecks} checks), attack ${watched.ms} ms`);
  assert.ok(watched.maxRssMb < MAX_RSS_MB, `${what}: gateway RSS reached ${watched.maxRssMb} MB (limit ${MAX_RSS_MB})`);
  assert.ok(
    watched.maxHealthMs < MAX_HEALTH_MS,
    `${what}: GET /health took ${watched.maxHealthMs} ms (limit ${MAX_HEALTH_MS}; ${watched.healthChecks} checks)`,
  );
}

/**
 * Runs `run` under `gw.watch()` and checks the bounds. When the attack itself failed too, both
 * are reported: an assertion about the reply alone would hide that the server also blew its memory.
 */
async function watched<T>(gw: GatewayProcess, what: string, run: (signal: AbortSignal) => Promise<T>, onRunaway?: () => void): Promise<Watched<T>> {
  let failure: { error: unknown } | undefined;
  const result = await gw.watch(
    async (signal) => {
      try {
        return await run(signal);
      } catch (error) {
        failure = { error };
        return undefined;
      }
    },
    { runawayMb: RUNAWAY_MB, ...(onRunaway === undefined ? {} : { onRunaway }) },
  );
  if (failure !== undefined) {
    try {
      assertBounded(result, what);
    } catch (bounds) {
      const reason = failure.error instanceof Error ? failure.error.message : String(failure.error);
      assert.fail(`${(bounds as Error).message}; and the attack failed: ${reason}`);
    }
    throw failure.error;
  }
  assertBounded(result, what);
  return result as Watched<T>;
}

/**
 * The attack's signal (and any others), plus a client-side bound so that a gateway that hangs
 * fails the case instead of the suite. A plain timer, not AbortSignal.any() over
 * AbortSignal.timeout(): on Node 20.20 that pair was seen never to fire (the suite hung for minutes).
 */
function bounded(signal: AbortSignal, ms = 8000, ...more: AbortSignal[]): AbortSignal {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(new Error(`no answer from the gateway within ${ms} ms`)), ms);
  timer.unref();
  for (const source of [signal, ...more]) {
    if (source.aborted) controller.abort(source.reason);
    else source.addEventListener('abort', () => controller.abort(source.reason), { once: true });
  }
  controller.signal.addEventListener('abort', () => clearTimeout(timer), { once: true });
  return controller.signal;
}

/** Reads at most `cap` bytes of a body, then drops the rest (a hostile upstream may have been relayed whole). */
async function readCapped(response: Response, cap = 64 * 1024): Promise<{ text: string; bytes: number; truncated: boolean }> {
  const reader = response.body?.getReader();
  if (reader === undefined) return { text: '', bytes: 0, truncated: false };
  const parts: Uint8Array[] = [];
  let bytes = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return { text: Buffer.concat(parts).toString('utf8'), bytes, truncated: false };
    bytes += value.length;
    parts.push(value);
    if (bytes > cap) {
      await reader.cancel().catch(() => undefined);
      return { text: Buffer.concat(parts).toString('utf8'), bytes, truncated: true };
    }
  }
}

/** An OpenAI error response with this status and code; returns its body. */
async function expectError(response: Response, status: number, code: string): Promise<ErrorBody> {
  const { text, truncated } = await readCapped(response);
  assert.ok(!truncated, `an error body larger than 64 KiB (status ${response.status}): ${text.slice(0, 300)}`);
  assert.equal(response.status, status, text.slice(0, 500));
  assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
  let body: unknown;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    assert.fail(`not JSON: ${text.slice(0, 300)}`);
  }
  assertErrorBody(body);
  assert.equal(body.error.code, code, body.error.message);
  return body;
}

/** A 200 from Backup, whose text is BACKUP_REPLY, after `attempts`. */
async function expectBackup(response: Response, stream: boolean, attempts: string): Promise<void> {
  const { text, truncated } = await readCapped(response);
  assert.ok(!truncated, 'the Backup answer is small');
  assert.equal(response.status, 200, text.slice(0, 500));
  assert.equal(response.headers.get('x-interference-provider'), 'Backup');
  assert.equal(response.headers.get('x-interference-attempts'), attempts);
  if (stream) {
    const sse = parseSse(text);
    assert.ok(sse.done, 'the stream ends with [DONE]');
    assert.equal(streamText(sse.events), BACKUP_REPLY);
  } else {
    const body = JSON.parse(text) as { choices: Array<{ message: { content: string } }> };
    assert.equal(body.choices[0]?.message.content, BACKUP_REPLY);
  }
}

/** The upstream's last response to a chat request: the one the attack got. */
function lastChat(evil: EvilUpstream): EvilResponse {
  const chats = evil.responses.filter((r) => r.path.startsWith('/v1/chat/completions'));
  const last = chats[chats.length - 1];
  assert.ok(last !== undefined, 'the evil upstream got the request');
  return last;
}

/** The gateway hung up on an endless (or never-finishing) upstream response within `ms`. */
async function assertUpstreamDropped(evil: EvilUpstream, ms = 3000): Promise<EvilResponse> {
  const record = lastChat(evil);
  assert.ok(await eventually(() => record.closedEarly, ms), `the gateway kept reading the ${record.mode} response (${record.bytes} bytes so far)`);
  return record;
}

/**
 * A gateway child per group that is restarted when a case left it bloated (an unbounded build
 * must fail its own case, not every case after it).
 */
class GatewayHolder {
  #gw: GatewayProcess | undefined;
  constructor(private readonly options: () => GatewayProcessOptions) {}

  get gw(): GatewayProcess {
    assert.ok(this.#gw !== undefined, 'the gateway is not running');
    return this.#gw;
  }

  async start(): Promise<void> {
    this.#gw = await startGatewayProcess(this.options());
  }

  async freshIfBloated(): Promise<void> {
    const rss = this.#gw?.rssBytes();
    if (rss !== undefined && rss < RESTART_ABOVE_MB * MiB) return;
    await this.stop();
    await this.start();
  }

  async stop(): Promise<void> {
    const gw = this.#gw;
    this.#gw = undefined;
    await gw?.stop();
  }
}

const common: Record<string, string> = {
  INTERFERENCE_RETRIES: '0',
  INTERFERENCE_FIRST_BYTE_TIMEOUT_MS: '5000',
  INTERFERENCE_IDLE_TIMEOUT_MS: '5000',
};

// ---- Hostile upstreams ----------------------------------------------------------------------------

describe('hostile upstreams', () => {
  // Assigned in before(); after() copes with a before() that failed halfway.
  let evil: EvilUpstream;
  let backup: Fake;
  let sink: CanarySink;
  let space: EvilGradio;
  const openaiCanary = `sk-canary-openai-${process.pid}-${Date.now()}`;
  const hfCanary = `hf_canary_${process.pid}_${Date.now()}`;
  const holder = new GatewayHolder(() => ({
    env: {
      ...common,
      INTERFERENCE_BREAKER_FAILURES: '1000', // every case here fails Evil on purpose; no breaker
      INTERFERENCE_MAX_UPSTREAM_BYTES: String(MiB),
      INTERFERENCE_MAX_EVENT_BYTES: String(MiB),
      INTERFERENCE_FIRST_CONTENT_TIMEOUT_MS: '1500',
      INTERFERENCE_REQUEST_TIMEOUT_MS: '30000',
      INTERFERENCE_IMAGE_TIMEOUT_MS: '10000',
      OPENAIAPI_BASE_URL: evil.url,
      OPENAIAPI_API_KEY: openaiCanary,
      HUGGINGSPACE_BASE_URL: space.url,
      HF_TOKEN: hfCanary,
      // The "other origin" here is a loopback sink: refusing internal addresses is test/private-downloads.test.ts's.
      INTERFERENCE_PRIVATE_DOWNLOADS: 'on',
    },
    config: {
      providers: [
        { id: 'Evil', api: 'openai', baseUrl: evil.url, models: ['m'] },
        { id: 'Backup', api: 'openai', baseUrl: backup.url, models: ['m'] },
      ],
    },
  }));

  before(async () => {
    sink = await startCanarySink();
    evil = await startEvilUpstream({ redirectTo: `${sink.url}/elsewhere` });
    backup = await startOpenAICompatibleFake({ reply: BACKUP_REPLY });
    space = await startEvilGradio({ space: 'black-forest-labs/FLUX.1-schnell', apiName: 'infer', fileUrl: `${sink.url}/file.png` });
    await holder.start();
  });
  after(async () => {
    await holder.stop();
    await Promise.all([evil?.stop(), backup?.close(), sink?.stop(), space?.stop()]);
  });
  beforeEach(() => holder.freshIfBloated());
  afterEach(() => {
    evil.cut(); // nothing endless survives its case
    evil.setMode('ok');
  });

  /** POST /v1/chat/completions naming `provider`, under the attack's signal. */
  const chat = (provider: string, stream: boolean, signal: AbortSignal): Promise<Response> =>
    holder.gw.post('/v1/chat/completions', { model: 'm', provider, stream, messages }, { signal: bounded(signal) });

  /** Runs `attack` with the upstream in `mode`, watched; a runaway gateway also gets its upstream cut. */
  async function attack<T>(mode: EvilMode, what: string, run: (signal: AbortSignal) => Promise<T>): Promise<Watched<T>> {
    evil.setMode(mode);
    return watched(holder.gw, what, run, () => evil.cut());
  }

  describe('a. endless SSE, aggregation cap (MAX_UPSTREAM_BYTES = 1 MiB)', () => {
    test('non-streaming, alone: 502 upstream_bad_response, quickly; the upstream is dropped', async () => {
      const w = await attack('endless-sse', 'endless SSE, non-streaming', async (signal) => {
        const response = await chat('Evil', false, signal);
        await expectError(response, 502, 'upstream_bad_response');
      });
      assert.ok(w.ms < 5000, `answered after ${w.ms} ms`);
      await assertUpstreamDropped(evil);
    });

    test('non-streaming, with Backup: 200 from Backup', async () => {
      await attack('endless-sse', 'endless SSE, failover', async (signal) => {
        await expectBackup(await chat('Evil Backup', false, signal), false, 'Evil=bad_response Backup=ok');
      });
      await assertUpstreamDropped(evil);
    });

    test('streaming client that reads some, stops reading, then leaves: bounded, the upstream is dropped', async () => {
      let sentWhilePaused = 0;
      await attack('endless-sse', 'endless SSE, slow streaming client', async (signal) => {
        const controller = new AbortController();
        const response = await holder.gw.post(
          '/v1/chat/completions',
          { model: 'm', provider: 'Evil', stream: true, messages },
          { signal: bounded(signal, 8000, controller.signal) },
        );
        assert.equal(response.status, 200);
        assert.equal(response.headers.get('x-interference-provider'), 'Evil');
        const reader = (response.body as ReadableStream<Uint8Array>).getReader();
        let got = 0;
        let head = '';
        while (got < 256 * 1024) {
          const { done, value } = await reader.read();
          assert.ok(!done, 'the stream went on');
          got += value.length;
          if (head.length < 4096) head += Buffer.from(value).toString('utf8');
        }
        assert.match(head, /^data: \{/, 'SSE framing');
        assert.match(head, /All work and no play/, 'the upstream text is relayed');
        // A client that stops reading: the gateway must apply backpressure, not buffer the upstream.
        const before = evil.bytesSent();
        await sleep(1500);
        sentWhilePaused = evil.bytesSent() - before;
        await reader.read();
        controller.abort();
        await reader.cancel().catch(() => undefined);
      });
      note(`the upstream wrote ${(sentWhilePaused / MiB).toFixed(1)} MiB while the client was not reading`);
      assert.ok(sentWhilePaused < 64 * MiB, `the upstream wrote ${Math.round(sentWhilePaused / MiB)} MiB while the client was not reading`);
      await assertUpstreamDropped(evil);
    });
  });

  describe('b. an SSE line that never ends (MAX_EVENT_BYTES = 1 MiB), streaming', () => {
    test('alone: 502 upstream_bad_response with a real status (nothing was streamed)', async () => {
      const w = await attack('endless-line', 'endless line', async (signal) => {
        await expectError(await chat('Evil', true, signal), 502, 'upstream_bad_response');
      });
      assert.ok(w.ms < 5000, `answered after ${w.ms} ms`);
      await assertUpstreamDropped(evil);
    });

    test('with Backup: a 200 stream from Backup', async () => {
      await attack('endless-line', 'endless line, failover', async (signal) => {
        await expectBackup(await chat('Evil Backup', true, signal), true, 'Evil=bad_response Backup=ok');
      });
      await assertUpstreamDropped(evil);
    });
  });

  describe('c. a 100 MB JSON body (MAX_UPSTREAM_BYTES = 1 MiB)', () => {
    test('non-streaming: 502 upstream_bad_response, quickly; the upstream stops far short of 100 MB', async () => {
      const w = await attack('huge-json', 'huge JSON', async (signal) => {
        await expectError(await chat('Evil', false, signal), 502, 'upstream_bad_response');
      });
      assert.ok(w.ms < 5000, `answered after ${w.ms} ms`);
      const record = await assertUpstreamDropped(evil);
      note(`the upstream wrote ${(record.bytes / MiB).toFixed(1)} MiB of its 100 MB`);
      assert.ok(record.bytes < 20 * MiB, `the upstream wrote ${Math.round(record.bytes / MiB)} MiB of its 100 MB before the gateway hung up`);
    });
  });

  describe('d. keep-alives and empty chunks, never content (FIRST_CONTENT_TIMEOUT = 1.5 s)', () => {
    for (const stream of [true, false]) {
      test(`${stream ? 'streaming' : 'non-streaming'}, alone: 504 upstream_timeout after ~1.5 s`, async () => {
        const w = await attack('trickle', 'trickle', async (signal) => {
          await expectError(await chat('Evil', stream, signal), 504, 'upstream_timeout');
        });
        assert.ok(w.ms >= 1400 && w.ms < 5000, `answered after ${w.ms} ms`);
        await assertUpstreamDropped(evil);
      });
    }

    test('streaming, with Backup: 200 from Backup', async () => {
      const w = await attack('trickle', 'trickle, failover', async (signal) => {
        await expectBackup(await chat('Evil Backup', true, signal), true, 'Evil=timeout Backup=ok');
      });
      assert.ok(w.ms < 5000, `answered after ${w.ms} ms`);
      await assertUpstreamDropped(evil);
    });
  });

  describe('f. 30 image URLs for n: 1 (OpenaiAPI)', () => {
    test('200 with exactly one image; at most one URL fetched', async () => {
      const hitsBefore = evil.imageHits;
      await attack('images-30-urls', '30 image URLs', async (signal) => {
        const response = await holder.gw.post(
          '/v1/images/generate',
          { prompt: 'x', model: 'dall-e-2', n: 1, provider: 'OpenaiAPI', response_format: 'b64_json' },
          { signal: bounded(signal) },
        );
        const { text, truncated } = await readCapped(response, 1 * MiB);
        assert.ok(!truncated);
        assert.equal(response.status, 200, text.slice(0, 500));
        const body = JSON.parse(text) as { data: Array<{ b64_json?: string }> };
        assert.equal(body.data.length, 1, `${body.data.length} images for n: 1`);
        assert.deepEqual(Buffer.from(body.data[0]?.b64_json ?? '', 'base64'), TINY_PNG);
      });
      const hits = evil.imageHits - hitsBefore;
      assert.ok(hits <= 1, `the gateway fetched ${hits} image URLs for one image`);
      const post = evil.requests.findLast((r) => r.path === '/v1/images/generations');
      assert.equal(post?.headers.authorization, `Bearer ${openaiCanary}`, 'the provider call itself carries the key');
    });
  });

  describe('g. a Space whose output file is on another origin', () => {
    test('200 with the image; the Space gets the token, the other origin never does', async () => {
      const sinkBefore = sink.requests.length;
      const spaceBefore = space.requests.length;
      await attack('ok', 'cross-origin Space output', async (signal) => {
        const response = await holder.gw.post(
          '/v1/images/generate',
          { prompt: 'x', model: 'flux-schnell', provider: 'HuggingSpace', response_format: 'b64_json' },
          { signal: bounded(signal) },
        );
        const { text } = await readCapped(response, 1 * MiB);
        assert.equal(response.status, 200, text.slice(0, 500));
        assert.ok(!text.includes(hfCanary), 'the token is not in the response');
        const body = JSON.parse(text) as { data: Array<{ b64_json?: string }> };
        assert.equal(body.data.length, 1);
        assert.deepEqual(Buffer.from(body.data[0]?.b64_json ?? '', 'base64'), TINY_PNG);
      });
      const spaceSaw = space.requests.slice(spaceBefore);
      assert.ok(spaceSaw.length >= 2, 'the Space got the call and the event stream request');
      for (const request of spaceSaw) assert.equal(request.headers.authorization, `Bearer ${hfCanary}`, `${request.method} ${request.path}`);
      const sinkSaw = sink.requests.slice(sinkBefore);
      assert.ok(
        sinkSaw.some((r) => r.method === 'GET' && r.path === '/file.png'),
        `the image was fetched from the other origin (${sinkSaw.map((r) => `${r.method} ${r.path}`).join(', ')})`,
      );
      for (const request of sinkSaw) {
        for (const [name, value] of Object.entries(request.headers)) {
          const text = Array.isArray(value) ? value.join(', ') : String(value);
          assert.ok(!text.includes(hfCanary) && !name.includes(hfCanary), `the other origin got the token in "${name}"`);
        }
      }
    });
  });

  describe('h. a 302 redirect', () => {
    for (const stream of [false, true]) {
      test(`${stream ? 'streaming' : 'non-streaming'}, alone: 502 upstream_bad_response, no Location, not followed`, async () => {
        const sinkBefore = sink.requests.length;
        await attack('redirect', 'redirect', async (signal) => {
          const response = await chat('Evil', stream, signal);
          assert.equal(response.headers.get('location'), null, 'no Location header reaches the client');
          await expectError(response, 502, 'upstream_bad_response');
        });
        assert.deepEqual(
          sink.requests.slice(sinkBefore).map((r) => r.path),
          [],
          'the gateway did not follow the redirect',
        );
      });
    }

    test('with Backup: 200 from Backup', async () => {
      await attack('redirect', 'redirect, failover', async (signal) => {
        await expectBackup(await chat('Evil Backup', false, signal), false, 'Evil=bad_response Backup=ok');
      });
    });
  });

  describe('i. a gzip-encoded answer', () => {
    test('streaming: 200 with the decoded text', async () => {
      await attack('gzip', 'gzip stream', async (signal) => {
        const response = await chat('Evil', true, signal);
        const { text } = await readCapped(response);
        assert.equal(response.status, 200, text.slice(0, 500));
        const sse = parseSse(text);
        assert.ok(sse.done, 'the stream ends with [DONE]');
        assert.equal(streamText(sse.events), REPLY_TEXT);
      });
    });

    test('non-streaming: 200 with the decoded text', async () => {
      await attack('gzip', 'gzip JSON', async (signal) => {
        const response = await chat('Evil', false, signal);
        const { text } = await readCapped(response);
        assert.equal(response.status, 200, text.slice(0, 500));
        const body = JSON.parse(text) as { choices: Array<{ message: { content: string } }> };
        assert.equal(body.choices[0]?.message.content, REPLY_TEXT);
      });
    });
  });
});

// ---- The breaker's probe meets a malformed answer ------------------------------------------------

describe('e. breaker probe answered with choices: [null]', () => {
  let evil: EvilUpstream;
  let gw: GatewayProcess;

  before(async () => {
    evil = await startEvilUpstream();
    gw = await startGatewayProcess({
      env: { ...common, INTERFERENCE_BREAKER_FAILURES: '1', INTERFERENCE_BREAKER_COOLDOWN_MS: '300' },
      // Two ids for the same upstream: each case has a breaker of its own.
      config: {
        providers: [
          { id: 'Evil', api: 'openai', baseUrl: evil.url, models: ['m'] },
          { id: 'EvilStream', api: 'openai', baseUrl: evil.url, models: ['m'] },
        ],
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await evil?.stop();
  });

  /** Non-streaming requests go to Evil, streaming ones to EvilStream. */
  const chat = (stream: boolean, signal: AbortSignal): Promise<Response> =>
    gw.post('/v1/chat/completions', { model: 'm', provider: stream ? 'EvilStream' : 'Evil', stream, messages }, { signal: bounded(signal, 5000) });

  /** Nothing of the gateway's insides in a client-facing message. */
  function assertClean(message: string): void {
    assert.doesNotMatch(message, /TypeError|ReferenceError|Cannot read|undefined|\n\s+at |\.[jt]s:\d+/, `internal text in: ${message}`);
  }

  /** Tries (at most every 100 ms) until a 200, for up to `ms`; returns the statuses seen. */
  async function recovers(stream: boolean, signal: AbortSignal, ms: number): Promise<number[]> {
    const statuses: number[] = [];
    const until = Date.now() + ms;
    while (Date.now() < until) {
      const response = await chat(stream, signal);
      await readCapped(response);
      statuses.push(response.status);
      if (response.status === 200) return statuses;
      await sleep(100);
    }
    return statuses;
  }

  test('non-streaming probe: 502 upstream_bad_response with a clean message; the breaker closes again', async () => {
    await watched(gw, 'breaker probe', async (signal) => {
      evil.setMode('fail-500');
      await expectError(await chat(false, signal), 502, 'upstream_error'); // the breaker opens (threshold 1)
      await sleep(400); // past the 300 ms cool-down: the next request is the probe
      evil.setMode('null-choices');
      const probe = await expectError(await chat(false, signal), 502, 'upstream_bad_response');
      assertClean(probe.error.message);
      await sleep(700);
      evil.setMode('ok');
      const statuses = await recovers(false, signal, 3000);
      assert.equal(statuses[statuses.length - 1], 200, `the breaker stayed open: ${statuses.join(' ')}`);
    });
  });

  test('streaming probe: 502 upstream_bad_response with a clean message; the breaker closes again', async () => {
    await watched(gw, 'breaker probe, streaming', async (signal) => {
      evil.setMode('null-choices');
      const first = await expectError(await chat(true, signal), 502, 'upstream_bad_response'); // opens the breaker
      assertClean(first.error.message);
      await sleep(400);
      const probe = await expectError(await chat(true, signal), 502, 'upstream_bad_response');
      assertClean(probe.error.message);
      await sleep(700);
      evil.setMode('ok');
      const statuses = await recovers(true, signal, 3000);
      assert.equal(statuses[statuses.length - 1], 200, `the breaker stayed open: ${statuses.join(' ')}`);
    });
  });

  test('GET /v1/providers/{id} reports both circuits closed', async () => {
    for (const id of ['Evil', 'EvilStream']) {
      const response = await gw.get(`/v1/providers/${id}`);
      assert.equal(response.status, 200);
      const body = (await response.json()) as { circuit?: unknown };
      assert.equal(body.circuit, 'closed', id);
    }
  });
});

// ---- Hostile clients ----------------------------------------------------------------------------

const statusOf = (raw: string): number | undefined => {
  const match = /^HTTP\/1\.1 (\d{3})/.exec(raw);
  return match === null ? undefined : Number(match[1]);
};

describe('j. hostile clients', () => {
  let evil: EvilUpstream;
  let gw: GatewayProcess;
  const localBody = { provider: 'Local', messages: [{ role: 'user', content: 'Once upon' }], max_tokens: 5 };

  before(async () => {
    evil = await startEvilUpstream();
    gw = await startGatewayProcess({
      env: {
        ...common,
        INTERFERENCE_BREAKER_FAILURES: '1000',
        INTERFERENCE_HEADERS_TIMEOUT_MS: '1000',
        INTERFERENCE_BODY_TIMEOUT_MS: '1000',
        INTERFERENCE_MAX_CONCURRENT: '3',
        INTERFERENCE_CORS_ORIGINS: 'http://localhost:5173',
      },
      config: { providers: [{ id: 'Evil', api: 'openai', baseUrl: evil.url, models: ['m'] }] },
    });
    // Load the embedded model once, so case 3 measures slots, not the model's first load.
    await gw
      .post('/v1/chat/completions', localBody, { signal: bounded(new AbortController().signal, 30_000) })
      .then((r) => r.arrayBuffer())
      .catch(() => undefined);
  });
  after(async () => {
    await gw?.stop();
    await evil?.stop();
  });

  const slowBodyHead = 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"messages';

  test('1. slow headers (one byte per 300 ms): 408 and closed within ~1–3 s', async () => {
    const w = await watched(gw, 'slow headers', () =>
      rawExchange(gw.port, 'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n', { drip: `X-Slow: ${'a'.repeat(64)}`, dripMs: 300 }),
    );
    const { text, closedMs } = w.value;
    assert.equal(statusOf(text), 408, `the server answered: ${JSON.stringify(text.slice(0, 200))}`);
    assert.ok(closedMs !== null && closedMs < 3500, `closed after ${closedMs === null ? 'never' : `${Math.round(closedMs)} ms`}`);
  });

  test('2. slow body (10 of 1000 bytes, then nothing): 408 and closed within ~1–3 s', async () => {
    const w = await watched(gw, 'slow body', () => rawExchange(gw.port, slowBodyHead));
    const { text, closedMs } = w.value;
    assert.equal(statusOf(text), 408, `the server answered: ${JSON.stringify(text.slice(0, 200))}`);
    assert.ok(closedMs !== null && closedMs < 3500, `closed after ${closedMs === null ? 'never' : `${Math.round(closedMs)} ms`}`);
  });

  test('3. three stalled uploads (MAX_CONCURRENT = 3) do not hold the slots: a real request still gets 200', async () => {
    const w = await watched(gw, 'stalled uploads', async (signal) => {
      const stalled = [0, 1, 2].map(() => rawExchange(gw.port, slowBodyHead));
      await sleep(200); // their headers are in; their bodies never will be
      const response = await gw.post('/v1/chat/completions', localBody, { signal: bounded(signal, 20_000) });
      const { text } = await readCapped(response);
      const results = await Promise.all(stalled);
      return { status: response.status, text, results };
    });
    const { status, text, results } = w.value;
    assert.equal(status, 200, text.slice(0, 500));
    for (const { text: raw, closedMs } of results) {
      assert.equal(statusOf(raw), 408, `a stalled upload got: ${JSON.stringify(raw.slice(0, 200))}`);
      assert.ok(closedMs !== null, 'a stalled upload was closed');
    }
  });

  test('4. a foreign page posting text/plain gets 403 and reaches no upstream; an allowed origin is served', async () => {
    const body = JSON.stringify({ model: 'm', provider: 'Evil', messages });
    const w = await watched(gw, 'cross-origin posts', async (signal) => {
      const before = evil.requests.length;
      const foreign = await gw.post('/v1/chat/completions', body, {
        headers: { origin: 'https://evil.example', 'content-type': 'text/plain' },
        signal: bounded(signal, 5000),
      });
      const foreignText = (await readCapped(foreign)).text;
      const reachedUpstream = evil.requests.length - before;
      const allowed = await gw.post('/v1/chat/completions', body, {
        headers: { origin: 'http://localhost:5173', 'content-type': 'text/plain' },
        signal: bounded(signal, 5000),
      });
      const allowedText = (await readCapped(allowed)).text;
      return { foreign, foreignText, reachedUpstream, allowed, allowedText };
    });
    const { foreign, foreignText, reachedUpstream, allowed, allowedText } = w.value;
    assert.equal(foreign.status, 403, foreignText.slice(0, 500));
    const error = JSON.parse(foreignText) as unknown;
    assertErrorBody(error);
    assert.equal(reachedUpstream, 0, 'the foreign request reached the upstream');
    assert.notEqual(foreign.headers.get('access-control-allow-origin'), '*');
    assert.notEqual(foreign.headers.get('access-control-allow-origin'), 'https://evil.example');

    assert.equal(allowed.status, 200, allowedText.slice(0, 500));
    assert.equal(allowed.headers.get('access-control-allow-origin'), 'http://localhost:5173');
    const completion = JSON.parse(allowedText) as unknown;
    assert.ok(isRecord(completion) && Array.isArray(completion.choices), 'a completion');
  });

  test('5. a million provider ids: a small 400, fast, /health unaffected', async () => {
    const w = await watched(gw, 'a million provider ids', async (signal) => {
      const started = performance.now();
      const response = await gw.post('/v1/chat/completions', { provider: 'a '.repeat(1e6), messages }, { signal: bounded(signal, 10_000) });
      const { text, bytes } = await readCapped(response, 4096);
      return { status: response.status, text, bytes, headers: [...response.headers].map(([k, v]) => `${k}: ${v}`).join('\n'), ms: performance.now() - started };
    });
    const { status, text, bytes, headers, ms } = w.value;
    assert.equal(status, 400, text.slice(0, 500));
    assert.ok(bytes < 4096, `a ${bytes}-byte error body`);
    assertErrorBody(JSON.parse(text));
    assert.ok(headers.length < 8192, `${headers.length} bytes of response headers`);
    assert.ok(ms < 1000, `answered after ${Math.round(ms)} ms`);
  });
});
