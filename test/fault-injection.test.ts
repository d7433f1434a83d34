/**
 * The fault-injection suite (reliability issue): each provider family through every fault its
 * protocol can have — refused connection, timeout before headers, timeout between chunks, 500,
 * 503, 429 with retry-after, malformed JSON, a stream broken before and after its first content,
 * an error event inside a 200 stream; Gradio's busy/quota/error/hung Spaces; image endpoints'
 * placeholders and non-images — for streaming and non-streaming requests, alone and with a
 * healthy provider behind. Each case asserts what the client sees (status, headers, body shape)
 * and which upstreams were called.
 *
 * Every request carries a unique canary key for the faulty provider (image providers also have
 * canary server keys), the request log is on and stderr is tapped for the whole file: no canary
 * may appear in any response or log line. Upstreams that echo the key prove the redaction.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { TINY_PNG, startGradioFake, type GradioBehaviour, type GradioFake } from './fakes/gradio-fake.js';
import {
  FAKE_JPEG,
  startHuggingFaceImagesFake,
  startOpenAIImagesFake,
  startPollinationsFake,
  type HuggingFaceImagesFake,
  type ImageBehaviour,
  type OpenAIImagesFake,
  type PollinationsFake,
} from './fakes/image-fakes.js';
import { closedPortUrl, startOpenAICompatibleFake, type Behaviour, type Fake, type Flavor } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';
import { Canaries, exchange, isErrorEvent, startEchoUpstream, tapStderr, type EchoUpstream, type Exchange, type StderrTap } from './support/fault-matrix.js';
import { assertErrorBody, isRecord, type ErrorBody } from './support/http.js';
import { parseSse, streamText } from './support/sse.js';
import { eventually } from './support/wait.js';

const canaries = new Canaries();
let tap: StderrTap;
before(() => {
  tap = tapStderr();
});
after(() => tap.restore());

/** Short per-phase limits so timeouts are fast; no retries and no breaker: this is about failover itself. */
const baseEnv: Record<string, string> = {
  INTERFERENCE_FIRST_BYTE_TIMEOUT_MS: '300',
  INTERFERENCE_IDLE_TIMEOUT_MS: '300',
  INTERFERENCE_IMAGE_TIMEOUT_MS: '500',
  INTERFERENCE_RETRIES: '0',
  INTERFERENCE_BREAKER_FAILURES: '1000',
  INTERFERENCE_LOG: '1',
};

/** Failure kinds as named in `x-interference-attempts`, with the error code a lone failure gets. */
type Kind = 'connection' | 'timeout' | 'server' | 'rate_limit' | 'bad_response' | 'auth';
const codeFor: Record<Kind, string> = {
  connection: 'upstream_unreachable',
  timeout: 'upstream_timeout',
  server: 'upstream_error',
  rate_limit: 'rate_limit_exceeded',
  bad_response: 'upstream_bad_response',
  auth: 'invalid_api_key',
};
const typeFor = (status: number): string => (status === 429 ? 'rate_limit_error' : status === 401 ? 'authentication_error' : 'upstream_error');

const OK: Behaviour = { kind: 'ok' };
const FAULTY_REPLY = 'Faulty zebra words before breaking down';
const BACKUP_REPLY = 'Backup answers in full.';

/** What the client sees when the fault is the only provider, and the reason recorded for it. */
interface Before {
  phase: 'before';
  kind: Kind;
  status: number;
  message: RegExp;
}
/** The fault happens after content was sent: a 200 stream ending with an error event. */
interface After {
  phase: 'after';
  message: RegExp;
}
const before_ = (kind: Kind, status: number, message: RegExp): Before => ({ phase: 'before', kind, status, message });
const after_ = (message: RegExp): After => ({ phase: 'after', message });

interface ChatFault {
  name: string;
  /** 'refused': the provider's base URL is a closed port. */
  behaviour: Behaviour | 'refused';
  json: Before;
  stream: Before | After;
  retryAfter?: string;
  /** The gateway must give up on the upstream request itself (close its connection). */
  cancels?: boolean;
}

const refused: ChatFault = {
  name: 'refused connection',
  behaviour: 'refused',
  json: before_('connection', 502, /connection refused/),
  stream: before_('connection', 502, /connection refused/),
};

const chatFaults: ChatFault[] = [
  {
    name: 'timeout before headers',
    behaviour: { kind: 'hang' },
    json: before_('timeout', 504, /no response headers within the first-byte timeout/),
    stream: before_('timeout', 504, /no response headers within the first-byte timeout/),
    cancels: true,
  },
  {
    name: 'timeout between chunks',
    behaviour: { kind: 'stream-stall', afterChunks: 2 },
    // Non-streaming: half the JSON body, then silence: nothing was sent to the client yet.
    json: before_('timeout', 504, /stalled past the idle timeout/),
    stream: after_(/stalled past the idle timeout/),
    cancels: true,
  },
  { name: 'HTTP 500', behaviour: { kind: 'status', status: 500 }, json: before_('server', 502, /HTTP 500/), stream: before_('server', 502, /HTTP 500/) },
  { name: 'HTTP 503', behaviour: { kind: 'status', status: 503 }, json: before_('server', 502, /HTTP 503/), stream: before_('server', 502, /HTTP 503/) },
  {
    name: 'HTTP 429 with retry-after',
    behaviour: { kind: 'rate-limit', retryAfterSeconds: 7 },
    json: before_('rate_limit', 429, /HTTP 429/),
    stream: before_('rate_limit', 429, /HTTP 429/),
    retryAfter: '7',
  },
  {
    name: 'malformed JSON',
    behaviour: { kind: 'malformed' },
    json: before_('bad_response', 502, /not JSON/),
    stream: before_('bad_response', 502, /not JSON/),
  },
  {
    name: 'stream broken before its first content',
    behaviour: { kind: 'stream-break-before-content' },
    json: before_('connection', 502, /upstream closed the connection/),
    stream: before_('connection', 502, /upstream closed the connection/),
  },
  {
    name: 'stream broken after its first content',
    behaviour: { kind: 'stream-break-after-content' },
    // Non-streaming: half the JSON body, then the socket dies: nothing was sent to the client yet.
    json: before_('connection', 502, /upstream closed the connection/),
    stream: after_(/upstream closed the connection/),
  },
  {
    name: 'error event inside a 200 stream',
    behaviour: { kind: 'stream-error-event' },
    // Non-streaming, the same fault is the upstream's 500 before anything was sent.
    json: before_('server', 502, /HTTP 500/),
    stream: after_(/error event in the stream/),
  },
];

interface ChatTarget {
  gateway: Gateway;
  /** undefined for the refused connection (nothing listens). */
  faulty: Fake | undefined;
  backup: Fake;
}

function chatProviders(faultyUrl: string, backupUrl: string) {
  return {
    providers: [
      { id: 'Faulty', api: 'openai', baseUrl: faultyUrl, models: ['m'] },
      { id: 'Backup', api: 'openai', baseUrl: backupUrl, models: ['m'] },
    ],
  };
}

const json = (ex: Exchange): unknown => JSON.parse(ex.text) as unknown;

/**
 * POSTs JSON to the gateway, bounded by the client: a request the gateway lets hang fails the
 * case after 5 s instead of hanging the suite (every timeout under test fires within ~1 s).
 */
function post(gateway: Gateway, route: string, body: unknown): Promise<Response> {
  return gateway.post(route, body, { signal: AbortSignal.timeout(5000) });
}

function assertServedByBackup(ex: Exchange, stream: boolean, kind: Kind): void {
  assert.equal(ex.status, 200, ex.text);
  assert.equal(ex.headers.get('x-interference-provider'), 'Backup');
  assert.equal(ex.headers.get('x-interference-attempts'), `Faulty=${kind} Backup=ok`);
  if (stream) {
    assert.match(ex.headers.get('content-type') ?? '', /^text\/event-stream/);
    const sse = parseSse(ex.text);
    assert.equal(sse.done, true, 'ends with [DONE]');
    assert.equal(sse.afterDone, 0);
    assert.ok(!sse.events.some(isErrorEvent), 'no error event');
    assert.equal(streamText(sse.events), BACKUP_REPLY);
    assert.ok(!ex.text.includes('zebra'), 'nothing of the faulty stream reached the client');
    for (const event of sse.events) assert.equal((event as { provider?: unknown }).provider, 'Backup');
  } else {
    assert.match(ex.headers.get('content-type') ?? '', /^application\/json/);
    const body = json(ex) as { provider: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'Backup');
    assert.equal(body.choices[0]?.message.content, BACKUP_REPLY);
  }
}

function assertErrorAfterContent(ex: Exchange, expected: After): void {
  assert.equal(ex.status, 200);
  assert.equal(ex.headers.get('x-interference-provider'), 'Faulty');
  assert.equal(ex.headers.get('x-interference-attempts'), 'Faulty=ok', 'the first content was the success');
  assert.match(ex.headers.get('content-type') ?? '', /^text\/event-stream/);
  const sse = parseSse(ex.text);
  assert.equal(sse.done, true, 'the error event is followed by [DONE]');
  assert.equal(sse.afterDone, 0);
  const last = sse.events.at(-1);
  assertErrorBody(last, 'last event');
  assert.equal(last.error.code, 'upstream_stream_error');
  assert.match(last.error.message, /^Faulty failed after the stream started: /);
  assert.match(last.error.message, expected.message);
  const chunks = sse.events.slice(0, -1);
  assert.ok(!chunks.some(isErrorEvent), 'exactly one error event, the last');
  const text = streamText(chunks);
  assert.ok(text.length > 0, 'content came first');
  assert.ok(FAULTY_REPLY.startsWith(text) && text !== FAULTY_REPLY, `a partial answer: ${JSON.stringify(text)}`);
}

function assertLoneFailure(ex: Exchange, provider: string, expected: Before, retryAfter: string | undefined): ErrorBody {
  assert.equal(ex.status, expected.status, ex.text);
  assert.match(ex.headers.get('content-type') ?? '', /^application\/json/, 'a real status and a JSON error, never a 200 stream');
  const body = json(ex);
  assertErrorBody(body);
  assert.ok(body.error.message.startsWith(`${provider}: `), `the provider is named: ${body.error.message}`);
  assert.match(body.error.message, expected.message);
  assert.equal(body.error.type, typeFor(expected.status));
  assert.equal(body.error.code, codeFor[expected.kind]);
  assert.equal(body.error.param, null);
  assert.equal(ex.headers.get('x-interference-attempts'), `${provider}=${expected.kind}`);
  assert.equal(ex.headers.get('x-interference-provider'), null);
  assert.equal(ex.headers.get('retry-after'), retryAfter ?? null);
  return body;
}

async function runChatCase(target: ChatTarget, fault: ChatFault, stream: boolean, withBackup: boolean): Promise<void> {
  const { gateway, faulty, backup } = target;
  const expected = stream ? fault.stream : fault.json;
  const key = canaries.make();
  const faultyFrom = faulty?.requests.length ?? 0;
  const closedFrom = faulty?.closedConnections ?? 0;
  const backupFrom = backup.requests.length;
  if (fault.behaviour !== 'refused') faulty?.setBehaviour(fault.behaviour);
  try {
    const response = await post(gateway, '/v1/chat/completions', {
      provider: withBackup ? 'Faulty Backup' : 'Faulty',
      model: 'm',
      messages: userMessage,
      stream,
      api_key: { Faulty: key },
    });
    const ex = await exchange(response);
    canaries.assertExchangeClean(ex, 'response');

    if (faulty !== undefined) {
      const calls = faulty.requests.slice(faultyFrom);
      assert.deepEqual(
        calls.map((call) => call.path),
        ['/v1/chat/completions'],
        'one attempt at the faulty provider (no retries)',
      );
      assert.equal(calls[0]?.headers.authorization, `Bearer ${key}`, 'the key went to the provider it names');
    }
    const backupCalls = backup.requests.slice(backupFrom);
    if (expected.phase === 'after') {
      assertErrorAfterContent(ex, expected);
      assert.equal(backupCalls.length, 0, 'no failover once content was sent');
    } else if (withBackup) {
      assertServedByBackup(ex, stream, expected.kind);
      assert.equal(backupCalls.length, 1, 'the next provider was used');
      assert.equal(backupCalls[0]?.headers.authorization, undefined, "the faulty provider's key never reaches the next one");
    } else {
      assertLoneFailure(ex, 'Faulty', expected, fault.retryAfter);
      assert.equal(backupCalls.length, 0);
    }
    if (fault.cancels === true && faulty !== undefined) {
      assert.ok(await eventually(() => faulty.closedConnections > closedFrom), 'the gateway closed the timed-out upstream request');
    }
  } finally {
    faulty?.setBehaviour(OK);
  }
}

const modes = [
  { stream: false, withBackup: false, label: 'json, alone' },
  { stream: false, withBackup: true, label: 'json, with Backup' },
  { stream: true, withBackup: false, label: 'stream, alone' },
  { stream: true, withBackup: true, label: 'stream, with Backup' },
] as const;

// The flavors run side by side (own fakes, own gateway); each flavor's cases run one after another
// (they share one fake's behaviour). Timeouts fire at undici's 1 s timer resolution, so this
// keeps the ~40 timeout cases from adding up.
describe('fault injection: OpenAI-compatible chat', { concurrency: true }, () => {
  for (const flavor of ['openai', 'ollama', 'llamacpp', 'huggingface'] as const satisfies readonly Flavor[]) {
    describe(`${flavor} flavor as the faulty provider`, { concurrency: false }, () => {
      const target = {} as ChatTarget;
      before(async () => {
        const faulty = await startOpenAICompatibleFake({ flavor, reply: FAULTY_REPLY });
        const backup = await startOpenAICompatibleFake({ flavor: 'openai', reply: BACKUP_REPLY });
        const gateway = await startGateway({ env: baseEnv, config: chatProviders(faulty.url, backup.url) });
        Object.assign(target, { gateway, faulty, backup });
      });
      after(async () => {
        await target.gateway.close();
        await Promise.all([target.faulty?.close(), target.backup.close()]);
      });

      for (const fault of chatFaults) {
        for (const mode of modes) {
          test(`${fault.name} (${mode.label})`, () => runChatCase(target, fault, mode.stream, mode.withBackup));
        }
      }
    });
  }

  describe('refused connection (nothing listens at the base URL)', { concurrency: false }, () => {
    const target = {} as ChatTarget;
    before(async () => {
      const backup = await startOpenAICompatibleFake({ flavor: 'openai', reply: BACKUP_REPLY });
      const gateway = await startGateway({ env: baseEnv, config: chatProviders(await closedPortUrl(), backup.url) });
      Object.assign(target, { gateway, faulty: undefined, backup });
    });
    after(async () => {
      await target.gateway.close();
      await target.backup.close();
    });
    for (const mode of modes) {
      test(`${refused.name} (${mode.label})`, () => runChatCase(target, refused, mode.stream, mode.withBackup));
    }
  });
});

// ---- Images ------------------------------------------------------------------------------------

const schnell = 'black-forest-labs/FLUX.1-schnell';
const dev = 'black-forest-labs/FLUX.1-dev';
const sd = 'stabilityai/stable-diffusion-3.5-large';

interface ImagesBody {
  data: Array<{ b64_json?: string }>;
  model: string;
  provider: string;
}

interface ImageFault {
  name: string;
  apply(): void;
  expected: Before;
  retryAfter?: string;
  /** Send this canary as the request's api_key (else the provider's server key, itself a canary, is used). */
  requestKey?: boolean;
  /** After a hung upstream: the gateway must have let go of it. */
  released?: () => boolean;
  /** A gateway defect this case exposes: registered as test.todo with this explanation. */
  knownIssue?: string;
}

interface ImageFamily {
  name: string;
  /** Spaces: a gateway with a short whole-job deadline; HTTP image APIs: one whose deadline is past the first-byte timeout. */
  gateway(): Gateway;
  provider: string;
  model: string;
  backup: string;
  /** The image bytes the backup returns. */
  backupBytes: Buffer;
  faults: ImageFault[];
  /** Authorization headers the faulty upstream received since `from` (a marker from `mark()`). */
  faultyAuth(from: number): Array<string | undefined>;
  mark(): number;
  backupCalls(from: number): Array<string | undefined>;
  backupMark(): number;
  /** The server key the faulty provider has, if any (a canary too). */
  serverKey?: string;
  reset(): void;
}

function assertImageFromBackup(ex: Exchange, family: ImageFamily, kind: Kind): void {
  assert.equal(ex.status, 200, ex.text);
  assert.equal(ex.headers.get('x-interference-provider'), family.backup);
  assert.equal(ex.headers.get('x-interference-attempts'), `${family.provider}=${kind} ${family.backup}=ok`);
  const body = json(ex) as ImagesBody;
  assert.equal(body.provider, family.backup);
  assert.equal(body.data.length, 1);
  assert.ok(Buffer.from(body.data[0]?.b64_json ?? '', 'base64').equals(family.backupBytes), "the backup's image");
}

async function runImageCase(family: ImageFamily, fault: ImageFault, withBackup: boolean): Promise<void> {
  const gateway = family.gateway();
  const requestKey = fault.requestKey === true || family.serverKey === undefined ? canaries.make() : undefined;
  const sentKey = requestKey ?? family.serverKey;
  const faultyFrom = family.mark();
  const backupFrom = family.backupMark();
  fault.apply();
  try {
    const response = await post(gateway, '/v1/images/generate', {
      prompt: 'a lighthouse at dusk',
      model: family.model,
      provider: withBackup ? `${family.provider} ${family.backup}` : family.provider,
      response_format: 'b64_json',
      ...(requestKey === undefined ? {} : { api_key: { [family.provider]: requestKey } }),
    });
    const ex = await exchange(response);
    canaries.assertExchangeClean(ex, 'response');
    const auth = family.faultyAuth(faultyFrom);
    assert.ok(auth.length > 0, 'the faulty upstream was called');
    for (const header of auth) assert.equal(header, `Bearer ${sentKey}`, 'its key went to it');
    const backupAuth = family.backupCalls(backupFrom);
    if (withBackup) {
      assertImageFromBackup(ex, family, fault.expected.kind);
      assert.ok(backupAuth.length > 0, 'the next provider was used');
      for (const header of backupAuth) assert.notEqual(header, `Bearer ${sentKey}`, "the faulty provider's key never reaches the next one");
    } else {
      const body = assertLoneFailure(ex, family.provider, fault.expected, fault.retryAfter);
      assert.ok(!body.error.message.includes('<a '), 'no HTML in the message');
      assert.equal(backupAuth.length, 0);
    }
    if (fault.released !== undefined) assert.ok(await eventually(fault.released), 'the hung upstream was let go');
  } finally {
    family.reset();
  }
}

describe('fault injection: images', () => {
  let spaces: GradioFake;
  let pollinations: PollinationsFake;
  let openai: OpenAIImagesFake;
  let hf: HuggingFaceImagesFake;
  /** Whole image jobs bounded at 500 ms: hung Spaces (heartbeats only) give up fast. */
  let spaceGateway: Gateway;
  /** Jobs bounded at 2.5 s, past the first-byte timeout (which fires within ~1 s: undici's timer resolution). */
  let httpGateway: Gateway;
  const openaiServerKey = canaries.make();
  const hfServerKey = canaries.make();
  const spaceServerKey = canaries.make();

  before(async () => {
    spaces = await startGradioFake([
      { space: schnell, protocol: 'call', workMs: 10, heartbeatMs: 20 },
      { space: dev, protocol: 'queue', workMs: 10, heartbeatMs: 20 },
      { space: sd, protocol: 'call', workMs: 10, heartbeatMs: 20, seedIndex: 2 },
    ]);
    pollinations = await startPollinationsFake();
    openai = await startOpenAIImagesFake({ apiKey: openaiServerKey });
    hf = await startHuggingFaceImagesFake({ apiKey: hfServerKey });
    const env = {
      ...baseEnv,
      HUGGINGSPACE_BASE_URL: spaces.url,
      HUGGINGSPACE_API_KEY: spaceServerKey,
      POLLINATIONSAI_BASE_URL: pollinations.url,
      OPENAIAPI_BASE_URL: `${openai.url}/v1`,
      OPENAI_API_KEY: openaiServerKey,
      HUGGINGFACE_BASE_URL: `${hf.url}/v1`,
      HUGGINGFACE_API_KEY: hfServerKey,
    };
    spaceGateway = await startGateway({ env: { ...env, INTERFERENCE_IMAGE_TIMEOUT_MS: '500' } });
    httpGateway = await startGateway({ env: { ...env, INTERFERENCE_IMAGE_TIMEOUT_MS: '2500' } });
  });
  after(async () => {
    await Promise.all([spaceGateway.close(), httpGateway.close()]);
    await Promise.all([spaces.close(), pollinations.close(), openai.close(), hf.close()]);
  });

  const authOf = (requests: ReadonlyArray<{ headers: Record<string, string | string[] | undefined> }>, from: number): Array<string | undefined> =>
    requests.slice(from).map((request) => {
      const value = request.headers.authorization;
      return Array.isArray(value) ? value.join(',') : value;
    });
  const pollinationsAsBackup = {
    backup: 'PollinationsAI',
    backupBytes: FAKE_JPEG,
    backupMark: () => pollinations.requests.length,
    backupCalls: (from: number) => authOf(pollinations.requests, from),
  };

  // Gradio Spaces: the group (both FLUX Spaces fail) and each protocol's Space on its own.
  const spaceFaults = (set: (behaviour: GradioBehaviour) => void): ImageFault[] => {
    const fault = (name: string, behaviour: GradioBehaviour, expected: Before, knownIssue?: string): ImageFault => ({
      name,
      apply: () => set(behaviour),
      expected,
      ...(knownIssue === undefined ? {} : { knownIssue }),
    });
    return [
      fault('queue full (503)', { kind: 'queue-full' }, before_('server', 502, /queue full/)),
      fault('ZeroGPU quota', { kind: 'zerogpu-quota' }, before_('rate_limit', 429, /exceeded your GPU quota/)),
      fault(
        'error event without a message',
        { kind: 'error-null' },
        // Once a finding: the quota pattern was matched against the gateway's own fallback text.
        before_('server', 502, /error without a message/),
      ),
      fault('unexpected error', { kind: 'unexpected-error' }, before_('server', 502, /Server stopped unexpectedly/)),
      fault('HTTP 500 on the job POST', { kind: 'http-status', status: 500 }, before_('server', 502, /HTTP 500/)),
      {
        ...fault('hung job (heartbeats only)', { kind: 'hang' }, before_('timeout', 504, /no image within 500 ms/)),
        released: () => spaces.openStreams() === 0,
      },
    ];
  };
  const spaceFamily = (name: string, provider: string, model: string, targets: readonly string[]): ImageFamily => ({
    name,
    gateway: () => spaceGateway,
    provider,
    model,
    ...pollinationsAsBackup,
    serverKey: undefined, // a request canary per case (the server key is for the backup checks)
    faults: spaceFaults((behaviour) => {
      for (const space of targets) spaces.setBehaviour(space, behaviour);
    }),
    mark: () => spaces.requests.length,
    faultyAuth: (from) =>
      authOf(
        spaces.requests.slice(from).filter((request) => targets.includes(request.space)),
        0,
      ),
    reset: () => {
      for (const space of [schnell, dev, sd]) spaces.setBehaviour(space, { kind: 'ok' });
    },
  });

  const imageFault = (
    name: string,
    set: (b: ImageBehaviour) => void,
    behaviour: ImageBehaviour,
    expected: Before,
    extra: Partial<ImageFault> = {},
  ): ImageFault => ({
    name,
    apply: () => set(behaviour),
    expected,
    ...extra,
  });

  const families: ImageFamily[] = [
    spaceFamily('HuggingSpace group (flux: both FLUX Spaces)', 'HuggingSpace', 'flux', [schnell, dev]),
    spaceFamily('a single Space, call protocol', 'BlackForestLabs_Flux1Schnell', 'flux-schnell', [schnell]),
    spaceFamily('a single Space, queue protocol', 'BlackForestLabs_Flux1Dev', 'flux-dev', [dev]),
    {
      name: 'PollinationsAI images',
      gateway: () => httpGateway,
      provider: 'PollinationsAI',
      model: 'flux',
      backup: 'HuggingSpace',
      backupBytes: TINY_PNG,
      backupMark: () => spaces.requests.length,
      backupCalls: (from) => authOf(spaces.requests, from),
      serverKey: undefined,
      mark: () => pollinations.requests.length,
      faultyAuth: (from) => authOf(pollinations.requests, from),
      reset: () => pollinations.setBehaviour({ kind: 'ok' }),
      faults: [
        imageFault('HTTP 500', (b) => pollinations.setBehaviour(b), { kind: 'status', status: 500 }, before_('server', 502, /HTTP 500/)),
        imageFault(
          'HTTP 429 with retry-after',
          (b) => pollinations.setBehaviour(b),
          { kind: 'rate-limit', retryAfterSeconds: 5 },
          before_('rate_limit', 429, /HTTP 429/),
          {
            retryAfter: '5',
          },
        ),
        imageFault('placeholder image (x-error-type)', (b) => pollinations.setBehaviour(b), { kind: 'placeholder' }, before_('server', 502, /placeholder/)),
        imageFault(
          'HTML instead of an image',
          (b) => pollinations.setBehaviour(b),
          { kind: 'not-image' },
          before_('bad_response', 502, /did not return an image/),
        ),
        imageFault('timeout before headers', (b) => pollinations.setBehaviour(b), { kind: 'hang' }, before_('timeout', 504, /first-byte timeout/)),
      ],
    },
    {
      name: 'OpenAI images',
      gateway: () => httpGateway,
      provider: 'OpenaiAPI',
      model: 'gpt-image',
      ...pollinationsAsBackup,
      serverKey: openaiServerKey,
      mark: () => openai.requests.length,
      faultyAuth: (from) => authOf(openai.requests, from),
      reset: () => openai.setBehaviour({ kind: 'ok' }),
      faults: [
        // A wrong request key: the fake checks it against its own and answers OpenAI's 401.
        imageFault('HTTP 401 (wrong key)', () => undefined, { kind: 'ok' }, before_('auth', 401, /HTTP 401: Incorrect API key provided/), { requestKey: true }),
        imageFault('HTTP 500', (b) => openai.setBehaviour(b), { kind: 'status', status: 500 }, before_('server', 502, /HTTP 500/)),
        imageFault(
          'HTTP 429 with retry-after',
          (b) => openai.setBehaviour(b),
          { kind: 'rate-limit', retryAfterSeconds: 6 },
          before_('rate_limit', 429, /HTTP 429/),
          {
            retryAfter: '6',
          },
        ),
        imageFault('timeout before headers', (b) => openai.setBehaviour(b), { kind: 'hang' }, before_('timeout', 504, /first-byte timeout/)),
      ],
    },
    {
      name: 'Hugging Face text-to-image',
      gateway: () => httpGateway,
      provider: 'HuggingFace',
      model: 'flux',
      ...pollinationsAsBackup,
      serverKey: hfServerKey,
      mark: () => hf.requests.length,
      faultyAuth: (from) => authOf(hf.requests, from),
      reset: () => hf.setBehaviour({ kind: 'ok' }),
      faults: [
        imageFault('HTTP 401 (wrong key)', () => undefined, { kind: 'ok' }, before_('auth', 401, /HTTP 401: Invalid credentials/), { requestKey: true }),
        imageFault('HTTP 500', (b) => hf.setBehaviour(b), { kind: 'status', status: 500 }, before_('server', 502, /HTTP 500/)),
        imageFault(
          'HTTP 429 with retry-after',
          (b) => hf.setBehaviour(b),
          { kind: 'rate-limit', retryAfterSeconds: 4 },
          before_('rate_limit', 429, /HTTP 429/),
          {
            retryAfter: '4',
          },
        ),
        imageFault('timeout before headers', (b) => hf.setBehaviour(b), { kind: 'hang' }, before_('timeout', 504, /first-byte timeout/)),
      ],
    },
  ];

  for (const family of families) {
    describe(family.name, () => {
      for (const fault of family.faults) {
        for (const withBackup of [false, true]) {
          const name = `${fault.name} (${withBackup ? `with ${family.backup} behind` : 'alone'})`;
          if (fault.knownIssue === undefined) test(name, () => runImageCase(family, fault, withBackup));
          else test(name, { todo: fault.knownIssue }, () => runImageCase(family, fault, withBackup));
        }
      }
    });
  }

  // ---- Upstream errors that quote the key: redacted before the client or the log sees them ----

  describe('image upstreams that echo the key in their error', () => {
    const echoBody = (auth: string | string[] | undefined): string =>
      JSON.stringify({ error: { message: `Invalid credentials: ${String(auth)}`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' } });

    const cases: Array<{ name: string; provider: string; model: string; apply(): void; reset(): void; status: number; requestKey: boolean }> = [
      {
        name: 'OpenaiAPI 401 quoting its server key',
        provider: 'OpenaiAPI',
        model: 'gpt-image',
        apply: () => openai.setBehaviour((index) => ({ kind: 'status', status: 401, body: echoBody(openai.requests[index]?.headers.authorization) })),
        reset: () => openai.setBehaviour({ kind: 'ok' }),
        status: 401,
        requestKey: false,
      },
      {
        name: 'HuggingFace 500 quoting its server key (plain text)',
        provider: 'HuggingFace',
        model: 'flux',
        apply: () =>
          hf.setBehaviour((index) => ({ kind: 'status', status: 500, body: `upstream failed for ${String(hf.requests[index]?.headers.authorization)}` })),
        reset: () => hf.setBehaviour({ kind: 'ok' }),
        status: 502,
        requestKey: false,
      },
      {
        name: 'PollinationsAI 500 quoting the request key',
        provider: 'PollinationsAI',
        model: 'flux',
        apply: () =>
          pollinations.setBehaviour((index) => ({ kind: 'status', status: 500, body: echoBody(pollinations.requests[index]?.headers.authorization) })),
        reset: () => pollinations.setBehaviour({ kind: 'ok' }),
        status: 502,
        requestKey: true,
      },
      {
        name: 'a Space answering 401 quoting the request key',
        provider: 'BlackForestLabs_Flux1Schnell',
        model: 'flux-schnell',
        apply: () =>
          spaces.setBehaviour(schnell, () => ({
            kind: 'http-status',
            status: 401,
            body: JSON.stringify({ detail: `Invalid token ${String(spaces.requests.at(-1)?.headers.authorization)}` }),
          })),
        reset: () => spaces.setBehaviour(schnell, { kind: 'ok' }),
        status: 401,
        requestKey: true,
      },
      {
        name: 'the HuggingSpace group quoting the server key',
        provider: 'HuggingSpace',
        model: 'flux-schnell',
        apply: () =>
          spaces.setBehaviour(schnell, () => ({
            kind: 'http-status',
            status: 500,
            body: `crashed while serving ${String(spaces.requests.at(-1)?.headers.authorization)}`,
          })),
        reset: () => spaces.setBehaviour(schnell, { kind: 'ok' }),
        status: 502,
        requestKey: false,
      },
    ];

    for (const c of cases) {
      for (const withBackup of [false, true]) {
        test(`${c.name} (${withBackup ? 'with a backup' : 'alone'})`, async () => {
          const key = c.requestKey ? canaries.make() : undefined;
          const backup = c.provider === 'PollinationsAI' ? 'HuggingSpace' : 'PollinationsAI';
          c.apply();
          try {
            const response = await post(httpGateway, '/v1/images/generate', {
              prompt: 'x',
              model: c.model,
              provider: withBackup ? `${c.provider} ${backup}` : c.provider,
              response_format: 'b64_json',
              ...(key === undefined ? {} : { api_key: { [c.provider]: key } }),
            });
            const ex = await exchange(response);
            canaries.assertExchangeClean(ex, 'response');
            if (withBackup) {
              assert.equal(ex.status, 200, ex.text);
              assert.equal(ex.headers.get('x-interference-provider'), backup);
            } else {
              assert.equal(ex.status, c.status, ex.text);
              const body = json(ex);
              assertErrorBody(body);
              assert.match(body.error.message, /\[redacted\]/, 'the quoted key was replaced');
            }
          } finally {
            c.reset();
          }
        });
      }
    }
  });
});

// ---- Chat upstreams that echo the key, and the log --------------------------------------------

describe('canary keys: chat upstreams that echo the key, and the request log', () => {
  let faulty: Fake;
  let backup: Fake;
  let echo: EchoUpstream;
  let gateway: Gateway;
  before(async () => {
    faulty = await startOpenAICompatibleFake({ reply: FAULTY_REPLY });
    backup = await startOpenAICompatibleFake({ reply: BACKUP_REPLY });
    echo = await startEchoUpstream();
    gateway = await startGateway({
      env: baseEnv,
      config: {
        providers: [
          { id: 'Faulty', api: 'openai', baseUrl: faulty.url, models: ['m'] },
          { id: 'Backup', api: 'openai', baseUrl: backup.url, models: ['m'] },
          { id: 'Echo', api: 'openai', baseUrl: echo.url, models: ['m'] },
        ],
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([faulty.close(), backup.close(), echo.close()]);
  });

  const chat = (provider: string, key: string, stream: boolean, keyAs: 'string' | 'object' = 'object') =>
    post(gateway, '/v1/chat/completions', {
      provider,
      model: 'm',
      messages: userMessage,
      stream,
      api_key: keyAs === 'string' ? key : { [provider.split(' ')[0] ?? provider]: key },
    });

  const echoing: Array<{ name: string; behaviour: (auth: string) => Behaviour; status: number }> = [
    {
      name: "401 quoting the key (OpenAI's shape)",
      behaviour: (auth) => ({
        kind: 'status',
        status: 401,
        body: JSON.stringify({
          error: { message: `Incorrect API key provided: ${auth}.`, type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
        }),
      }),
      status: 401,
    },
    {
      name: '500 quoting the key in a plain-text body',
      behaviour: (auth) => ({ kind: 'status', status: 500, body: `proxy error: upstream refused ${auth}`, headers: { 'content-type': 'text/plain' } }),
      status: 502,
    },
    {
      name: '429 quoting the key with retry-after',
      behaviour: (auth) => ({ kind: 'status', status: 429, body: JSON.stringify({ error: `rate limited for ${auth}` }), headers: { 'retry-after': '3' } }),
      status: 429,
    },
  ];

  for (const c of echoing) {
    for (const mode of modes) {
      test(`${c.name} (${mode.label})`, async () => {
        const key = canaries.make();
        faulty.setBehaviour((request) => c.behaviour(String(request.headers.authorization)));
        try {
          const ex = await exchange(await chat(mode.withBackup ? 'Faulty Backup' : 'Faulty', key, mode.stream));
          canaries.assertExchangeClean(ex, 'response');
          assert.equal(faulty.requests.at(-1)?.headers.authorization, `Bearer ${key}`);
          if (mode.withBackup) {
            assert.equal(ex.status, 200);
            assert.equal(ex.headers.get('x-interference-provider'), 'Backup');
          } else {
            assert.equal(ex.status, c.status, ex.text);
            const body = json(ex);
            assertErrorBody(body);
            assert.match(body.error.message, /\[redacted\]/);
          }
        } finally {
          faulty.setBehaviour(OK);
        }
      });
    }
  }

  test('api_key as a string: a 500 quoting the key is redacted too', async () => {
    const key = canaries.make();
    faulty.setBehaviour((request) => ({
      kind: 'status',
      status: 500,
      body: JSON.stringify({ error: { message: `bad ${String(request.headers.authorization)}` } }),
    }));
    try {
      const ex = await exchange(await chat('Faulty', key, false, 'string'));
      canaries.assertExchangeClean(ex, 'response');
      assert.equal(ex.status, 502);
      assert.match(ex.text, /\[redacted\]/);
    } finally {
      faulty.setBehaviour(OK);
    }
  });

  // An upstream message is cut at 500 characters before the gateway redacts: a key that
  // straddles the cut must not leave its first half in the message.
  // FINDING: errorMessageFrom() (src/core/http.ts) cuts a non-JSON upstream body to 500 characters,
  // then asUpstreamError() (src/core/failover.ts) redacts only whole occurrences of the key: the
  // first half of the key survives in the error message and in the request log.
  // Once a finding: upstream messages were truncated before redaction, so a key cut by the 500-character limit leaked its first part.
  for (const stream of [false, true]) {
    // Once a finding: the cut tail is now redacted too.
    test(`a key quoted across the 500-character message limit (${stream ? 'stream' : 'json'})`, async () => {
      const key = canaries.make();
      canaries.exempt.add(key); // checked here, left out of the suite-wide log check
      // 469 + 'Bearer ' (7) + 'sk-canary-' (10) = 486: the cut at 500 keeps 14 of the 24 secret characters.
      faulty.setBehaviour((request) => ({
        kind: 'status',
        status: 500,
        body: `${'x'.repeat(469)}${String(request.headers.authorization)} is not allowed here`,
        headers: { 'content-type': 'text/plain' },
      }));
      try {
        const ex = await exchange(await chat('Faulty', key, stream));
        assert.equal(ex.status, 502);
        canaries.assertExchangeClean(ex, 'response');
        await sleep(20);
        canaries.assertClean(tap.text(), 'the request log', [key]);
      } finally {
        faulty.setBehaviour(OK);
      }
    });
  }

  test('a 200 stream whose error event quotes the key, after content: the event is redacted', async () => {
    const key = canaries.make();
    const ex = await exchange(await chat('Echo', key, true));
    canaries.assertExchangeClean(ex, 'response');
    assert.equal(echo.requests.at(-1)?.authorization, `Bearer ${key}`);
    assert.equal(ex.status, 200);
    const sse = parseSse(ex.text);
    assert.equal(sse.done, true);
    assert.equal(streamText(sse.events), 'echo');
    const last = sse.events.at(-1);
    assertErrorBody(last);
    assert.equal(last.error.code, 'upstream_stream_error');
    assert.match(last.error.message, /\[redacted\]/);
  });

  for (const withBackup of [false, true]) {
    test(`an error event before any content in a 200 stream, quoting the key (${withBackup ? 'with Backup' : 'alone'})`, async () => {
      const key = canaries.make();
      const backupFrom = backup.requests.length;
      const response = await post(gateway, '/v1/chat/completions', {
        provider: withBackup ? 'Echo Backup' : 'Echo',
        model: 'early-error',
        messages: userMessage,
        stream: true,
        api_key: { Echo: key },
      });
      const ex = await exchange(response);
      canaries.assertExchangeClean(ex, 'response');
      assert.equal(echo.requests.at(-1)?.authorization, `Bearer ${key}`);
      if (withBackup) {
        assert.equal(ex.status, 200);
        assert.equal(ex.headers.get('x-interference-attempts'), 'Echo=server Backup=ok');
        const sse = parseSse(ex.text);
        assert.equal(sse.done, true);
        assert.ok(!sse.events.some(isErrorEvent));
        assert.equal(streamText(sse.events), BACKUP_REPLY);
        assert.equal(backup.requests.length - backupFrom, 1);
      } else {
        assert.equal(ex.status, 502);
        assert.match(ex.headers.get('content-type') ?? '', /^application\/json/);
        const body = json(ex);
        assertErrorBody(body);
        assert.match(body.error.message, /^Echo: error event in the stream: .*\[redacted\]/);
        assert.equal(backup.requests.length, backupFrom);
      }
    });

    test(`a 200 JSON body that is an error quoting the key (${withBackup ? 'with Backup' : 'alone'})`, async () => {
      const key = canaries.make();
      const ex = await exchange(await chat(withBackup ? 'Echo Backup' : 'Echo', key, false));
      canaries.assertExchangeClean(ex, 'response');
      if (withBackup) {
        assert.equal(ex.status, 200);
        assert.equal(ex.headers.get('x-interference-attempts'), 'Echo=server Backup=ok');
      } else {
        assert.equal(ex.status, 502);
        const body = json(ex);
        assertErrorBody(body);
        assert.match(body.error.message, /^Echo: .*\[redacted\]/);
      }
    });
  }

  test('no canary key in any log line of the whole suite', async () => {
    await sleep(20); // the last request's log line is written on 'finish'
    const lines = tap.lines();
    const logLines = lines.filter((line) => line.startsWith('{'));
    assert.ok(logLines.length >= 200, `request logging was on for the suite (${logLines.length} lines)`);
    for (const line of logLines) {
      const value = JSON.parse(line) as unknown;
      assert.ok(isRecord(value));
    }
    const log = tap.text();
    // The log is not trivially clean: it does carry the upstreams' messages (redacted).
    assert.match(log, /HTTP 500/);
    assert.match(log, /\[redacted\]/);
    assert.ok(canaries.all.length >= 200, `${canaries.all.length} canaries`);
    canaries.assertClean(log, 'the request log', canaries.checked());
  });
});
