import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { request } from 'undici';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { startGateway, userMessage, type Gateway } from './support/gateway.js';

/** Streams are forwarded as they arrive: no buffering until the end, no merging across upstream reads. */
describe('stream forwarding', () => {
  let upstream: Fake;
  let gateway: Gateway;
  const gapMs = 60;

  before(async () => {
    upstream = await startOpenAICompatibleFake({ reply: 'one two three four five six', behaviour: { kind: 'slow-stream', delayMs: gapMs } });
    gateway = await startGateway({ config: { providers: [{ id: 'Slow', api: 'openai', baseUrl: upstream.url, models: ['m'] }] } });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  test('each upstream event reaches the client in its own read, about when the upstream sent it', async () => {
    const started = performance.now();
    const response = await request(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'Slow', messages: userMessage, stream: true }),
    });
    assert.equal(response.statusCode, 200);
    const arrivals: Array<{ at: number; events: number }> = [];
    let text = '';
    for await (const chunk of response.body) {
      const piece = String(chunk);
      text += piece;
      arrivals.push({ at: performance.now() - started, events: piece.split('\n\n').filter((part) => part.startsWith('data: ')).length });
    }
    assert.ok(text.endsWith('data: [DONE]\n\n'));
    const contentReads = arrivals.filter((arrival) => arrival.events > 0);
    // Six words, each sent `gapMs` apart upstream: the client sees them spread out, not in one burst at the end.
    assert.ok(contentReads.length >= 6, `the client got ${contentReads.length} separate reads`);
    const span = (contentReads.at(-1)?.at ?? 0) - (contentReads[0]?.at ?? 0);
    assert.ok(span >= gapMs * 4, `events spread over ${span.toFixed(0)} ms, as the upstream sent them`);
    // No read carries more than the upstream sent in one go (the role chunk and the first word may share one).
    assert.ok(
      contentReads.every((arrival) => arrival.events <= 2),
      JSON.stringify(arrivals),
    );
  });
});

/**
 * Events that differ only in their text are read without JSON.parse after the first
 * (providers/openai-compatible/chunk-template.ts): whatever the text holds (quotes, escapes,
 * newlines, astral characters, line separators), the client gets each piece as sent, in the
 * upstream's own bytes with `provider` added.
 */
describe('stream text through the event template', () => {
  const pieces = ['Plain', ' "quoted"', ' back\\slash', '\nnew line', '\ttab', ' é😀', ' \u2028\u2029', ' </script>', ' \u0001', '', ' end'];
  let upstream: Fake;
  let gateway: Gateway;

  before(async () => {
    upstream = await startOpenAICompatibleFake({ reply: pieces });
    gateway = await startGateway({ config: { providers: [{ id: 'Text', api: 'openai', baseUrl: upstream.url, models: ['m'] }] } });
  });
  after(async () => {
    await gateway.close();
    await upstream.close();
  });

  test('every piece arrives as sent, each event the upstream JSON with provider added', async () => {
    const response = await request(`${gateway.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'Text', messages: userMessage, stream: true }),
    });
    assert.equal(response.statusCode, 200);
    const text = await response.body.text();
    const events = text
      .split('\n\n')
      .filter((event) => event.startsWith('data: {'))
      .map((event) => JSON.parse(event.slice(6)) as { provider: string; choices: Array<{ delta: { content?: string } }> });
    assert.ok(events.every((event) => event.provider === 'Text'));
    const contents = events.map((event) => event.choices[0]?.delta.content).filter((content) => content !== undefined && content !== '');
    assert.deepEqual(
      contents,
      pieces.filter((piece) => piece !== ''),
    );
  });

  test('the Messages entrance, which writes its events from the chunks read, gets the same text', async () => {
    const response = await request(`${gateway.url}/v1/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'Text', model: 'm', max_tokens: 100, messages: userMessage, stream: true }),
    });
    assert.equal(response.statusCode, 200);
    const deltas = (await response.body.text())
      .split('\n\n')
      .filter((event) => event.startsWith('event: content_block_delta'))
      .map((event) => (JSON.parse(event.slice(event.indexOf('data: ') + 6)) as { delta: { text: string } }).delta.text);
    assert.equal(deltas.join(''), pieces.join(''));
  });
});
