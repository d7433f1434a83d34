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
