import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { describe, test } from 'node:test';
import { UpstreamError } from '../src/core/errors.js';
import { MAX_CHARS_PER_TOKEN } from '../src/providers/local/prompt.js';
import { publicText, publicUrl } from '../src/server/routes/catalog.js';
import { startGateway, storiesModel } from './support/gateway.js';
import { ask, openLocal, streamOf } from './support/local.js';

const isKind = (kind: string) => (error: unknown) => error instanceof UpstreamError && error.kind === kind;
const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: still pending after ${ms} ms`)), ms).unref())]);

describe('Local provider hardening', () => {
  test('a 6.8 MB prompt is refused by its length, without tokenizing on the event loop', async (t) => {
    const provider = openLocal(storiesModel, { parallel: 1 });
    t.after(() => provider.close());
    await (async () => {
      for await (const _ of streamOf(await ask(provider, { max_tokens: 2 }))); // loaded and warm
    })();
    const huge = 'Once upon a time there was a little girl. '.repeat(162_000); // ~6.8 MB
    assert.ok(huge.length > 6_500_000);
    const histogram = monitorEventLoopDelay({ resolution: 5 });
    let maxGap = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
    }, 5);
    histogram.enable();
    const started = performance.now();
    let refused: unknown;
    try {
      await ask(provider, {
        messages: [
          { role: 'system', content: 'Be brief.' },
          { role: 'user', content: huge },
        ],
      });
    } catch (error) {
      refused = error;
    }
    const elapsed = performance.now() - started;
    await new Promise((resolve) => setTimeout(resolve, 20)); // one more tick after the call
    clearInterval(ticker);
    histogram.disable();
    assert.ok(maxGap < 200, `the event loop was blocked for ${maxGap.toFixed(0)} ms`);
    assert.ok(histogram.max / 1e6 < 200, `event-loop delay peaked at ${(histogram.max / 1e6).toFixed(0)} ms`);
    assert.ok(refused instanceof UpstreamError, `refused, not ${String(refused)}`);
    assert.equal(refused.kind, 'bad_request');
    assert.match(refused.message, /too long for the local model's context of 512 tokens/);
    assert.ok(elapsed < 200, `refused in ${elapsed.toFixed(0)} ms`);
    // Array content counts too.
    await assert.rejects(ask(provider, { messages: [{ role: 'user', content: [{ type: 'text', text: huge }] }] }), isKind('bad_request'));
    // Just under the length bound, the token count still decides (and still refuses: it cannot fit).
    const under = 'a '.repeat((512 * MAX_CHARS_PER_TOKEN) / 2 - 10);
    await assert.rejects(
      ask(provider, { messages: [{ role: 'user', content: under }] }),
      (e: unknown) => isKind('bad_request')(e) && /does not fit/.test((e as Error).message),
    );
  });

  test('close() rejects queued requests with "shutting down", stops running generations, and is idempotent', async () => {
    const provider = openLocal(storiesModel, { parallel: 1 });
    const busy = await ask(provider, { max_tokens: 480 });
    const queued = ask(provider, { max_tokens: 5 });
    const queuedOutcome = queued.then(
      () => 'resolved',
      (error: unknown) => error,
    );
    await new Promise((resolve) => setImmediate(resolve));
    const started = Date.now();
    const closing = provider.close();
    const again = provider.close();

    const error = await within(queuedOutcome, 1000, 'the queued request');
    assert.ok(error instanceof UpstreamError, `the queued request was refused, not ${String(error)}`);
    assert.equal(error.kind, 'unavailable');
    assert.equal(error.message, 'the server is shutting down');
    assert.ok(Date.now() - started < 1000);
    assert.equal(again, closing, 'a second close() is the same shutdown');

    // The running generation ends (its stream throws) instead of running on or hanging.
    let completion = 0;
    const streamEnd = (async () => {
      for await (const chunk of streamOf(busy)) if (chunk.choices[0]?.delta.content) completion++;
      return 'ended';
    })().catch((e: unknown) => e);
    const ending = await within(streamEnd, 5000, 'the running stream');
    assert.ok(isKind('unavailable')(ending), `the running stream threw "shutting down", not ${String(ending)}`);
    assert.ok(completion < 480, `stopped after ${completion} pieces`);
    await within(closing, 5000, 'close()');
    await provider.close();
    assert.equal(provider.activeGenerations(), 0);
    await assert.rejects(ask(provider), isKind('unavailable'));
  });

  test('close() while the model is still loading: the waiting request is refused, close resolves', async () => {
    const provider = openLocal(storiesModel, { parallel: 1 });
    const pending = ask(provider).then(
      () => 'resolved',
      (error: unknown) => error,
    );
    const closing = provider.close();
    const outcome = await within(pending, 10_000, 'the request waiting for the model');
    assert.ok(isKind('unavailable')(outcome), String(outcome));
    await within(closing, 10_000, 'close()');
  });

  test('through the gateway, an over-long prompt is a 400', async (t) => {
    const gateway = await startGateway();
    t.after(() => gateway.close());
    const response = await gateway.post('/v1/chat/completions', { model: 'local', messages: [{ role: 'user', content: 'x'.repeat(200_000) }] });
    const body = (await response.json()) as { error?: { message?: string } };
    assert.equal(response.status, 400, JSON.stringify(body));
    assert.match(body.error?.message ?? '', /too long/);
  });
});

// The catalog shares this file (the test files of this change are fixed): nothing it shows may carry a secret.
describe('provider catalog: URLs without credentials or query strings', () => {
  test('publicUrl strips user-info, query and fragment, and leaves everything else as written', () => {
    const cases: [string, string][] = [
      ['https://user:pass@host', 'https://host'],
      ['http://user:secret@127.0.0.1:9/v1?key=abc', 'http://127.0.0.1:9/v1'],
      ['https://host/path/?token=zzz#frag', 'https://host/path/'],
      ['https://a%40b:p%3Ass@example.com:8443/x/y', 'https://example.com:8443/x/y'],
      ['https://u:p@w@host/v1', 'https://host/v1'],
      ['HTTPS://Host.Example/V1', 'HTTPS://Host.Example/V1'],
      ['https://huggingface.co/settings/tokens', 'https://huggingface.co/settings/tokens'],
      ['https://host/@scope/pkg', 'https://host/@scope/pkg'],
      ['//user:pw@cdn.example/x?sig=1', '//cdn.example/x'],
      ['user:pw@host/x?k=1', 'host/x'],
      ['', ''],
      ['not a url', 'not a url'],
      ['Local (embedded)', 'Local (embedded)'],
      ['::::', '::::'],
    ];
    for (const [input, expected] of cases) assert.equal(publicUrl(input), expected, input);
    assert.equal(
      publicText('cannot get local model https://me:tok@files.example/m.gguf?sig=s3cr3t; set X (get one at https://x.example/keys?k=1).'),
      'cannot get local model https://files.example/m.gguf; set X (get one at https://x.example/keys).',
    );
  });

  test('/v1/providers and /v1/providers/{id} never show credentials or query strings of configured URLs', async (t) => {
    const gateway = await startGateway({
      config: {
        providers: [
          { id: 'Mine', api: 'openai', baseUrl: 'http://user:secret@127.0.0.1:9/v1?key=abc', url: 'http://user:secret@127.0.0.1:9/?token=zzz' },
          { id: 'Yours', api: 'openai', baseUrl: 'http://other:hunter2@127.0.0.1:9/v1?api_key=qqq#frag' },
        ],
      },
    });
    t.after(() => gateway.close());
    for (const route of ['/v1/providers', '/v1/providers/Mine', '/v1/providers/Yours', '/v1/models']) {
      const response = await gateway.get(route);
      assert.equal(response.status, 200, route);
      const text = await response.text();
      for (const secret of ['secret', 'abc', 'zzz', 'hunter2', 'qqq', 'frag', 'user:', 'other:'])
        assert.ok(!text.includes(secret), `${route} shows ${secret}: ${text.slice(0, 400)}`);
    }
    const mine = (await (await gateway.get('/v1/providers/Mine')).json()) as { url: string };
    assert.equal(mine.url, 'http://127.0.0.1:9/');
    const yours = (await (await gateway.get('/v1/providers/Yours')).json()) as { url: string };
    assert.equal(yours.url, 'http://127.0.0.1:9/v1');
  });
});
