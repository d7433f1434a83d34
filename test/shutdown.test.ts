/**
 * Shutdown past its grace period and the request log: every request still running gets an answer
 * (a stream its error event and `[DONE]`, a waiting request a 503, a request queued for the
 * embedded model a 503), the cut is logged with its count, and every request has its log line,
 * including those whose client left (499).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { tapStderr, type StderrTap } from './support/fault-matrix.js';
import { startGateway, userMessage } from './support/gateway.js';
import { eventually } from './support/wait.js';

interface LogLine {
  route?: string;
  status?: number;
  outcome?: string;
  event?: string;
  message?: string;
}

function logLines(tap: StderrTap): LogLine[] {
  return tap
    .lines()
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as LogLine);
}

/** Reads an SSE response until `stop(text)` is true; returns the text so far and the reader. */
async function readUntil(response: Response, stop: (text: string) => boolean): Promise<{ text: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = '';
  while (!stop(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  return { text, reader };
}

async function readRest(reader: ReadableStreamDefaultReader<Uint8Array>, text: string): Promise<string> {
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read().catch(() => ({ value: undefined, done: true }));
    if (done) return text;
    text += decoder.decode(value, { stream: true });
  }
}

describe('shutdown past the grace period, and the request log', () => {
  let slow: Fake;
  let tap: StderrTap;

  before(async () => {
    slow = await startOpenAICompatibleFake({ reply: 'one two three four five six seven eight nine ten', behaviour: { kind: 'slow-stream', delayMs: 150 } });
    tap = tapStderr();
  });
  after(async () => {
    tap.restore();
    await slow.close();
  });

  test('a running stream ends with an error event and [DONE], a waiting request gets a 503, and the cut is logged', async () => {
    const gateway = await startGateway({
      env: { INTERFERENCE_LOG: '1', INTERFERENCE_RETRIES: '0' },
      config: { providers: [{ id: 'Slow', api: 'openai', baseUrl: slow.url, models: ['m'] }] },
    });
    const streaming = await gateway.post('/v1/chat/completions', { provider: 'Slow', model: 'm', stream: true, messages: userMessage });
    assert.equal(streaming.status, 200);
    const { text, reader } = await readUntil(streaming, (so) => so.includes('"content":"one'));
    const waiting = gateway.post('/v1/chat/completions', { provider: 'Slow', model: 'm', messages: userMessage });
    await sleep(50);
    const closed = gateway.close(300);
    const rest = await readRest(reader, text);
    assert.match(rest, /data: \{"error":\{[^\n]*"code":"server_shutting_down"/);
    assert.ok(rest.endsWith('data: [DONE]\n\n'), rest.slice(-200));
    const answer = await waiting;
    assert.equal(answer.status, 503);
    assert.equal(((await answer.json()) as { error: { code: string } }).error.code, 'server_shutting_down');
    await closed;
    const lines = logLines(tap);
    const cutLines = lines.filter((line) => line.outcome === 'shutdown_cut');
    assert.equal(cutLines.length, 2, JSON.stringify(lines));
    assert.ok(cutLines.every((line) => line.status === 503));
    assert.ok(lines.some((line) => line.event === 'shutdown' && /cut 2 request/.test(line.message ?? '')));
  });

  test('requests queued for the embedded model get a 503 at shutdown, not silence', async () => {
    const gateway = await startGateway({ env: { INTERFERENCE_LOCAL_PARALLEL: '1', INTERFERENCE_LOG: '1' } });
    const first = await gateway.post('/v1/chat/completions', {
      provider: 'Local',
      stream: true,
      max_tokens: 400,
      messages: [{ role: 'user', content: 'Once upon a time' }],
    });
    assert.equal(first.status, 200);
    const { text, reader } = await readUntil(first, (so) => so.includes('data: {'));
    const queued = gateway.post('/v1/chat/completions', { provider: 'Local', max_tokens: 50, messages: [{ role: 'user', content: 'Once upon a time' }] });
    await sleep(30);
    const closed = gateway.close(0);
    const answer = await queued;
    assert.equal(answer.status, 503);
    const rest = await readRest(reader, text);
    assert.ok(rest.endsWith('data: [DONE]\n\n'));
    await closed;
  });

  test('a client that leaves mid-stream is logged as 499', async () => {
    const gateway = await startGateway({
      env: { INTERFERENCE_LOG: '1' },
      config: { providers: [{ id: 'Slow', api: 'openai', baseUrl: slow.url, models: ['m'] }] },
    });
    try {
      const controller = new AbortController();
      const response = await gateway.post(
        '/v1/chat/completions',
        { provider: 'Slow', model: 'm', stream: true, messages: userMessage },
        { headers: { 'x-request-id': 'leaver-1' }, signal: controller.signal },
      );
      await readUntil(response, (so) => so.includes('"content":"one')).catch(() => undefined);
      controller.abort();
      const find = () => tap.lines().find((entry) => entry.includes('"id":"leaver-1"'));
      assert.ok(await eventually(() => find() !== undefined, 3000), 'the request was logged');
      const parsed = JSON.parse(find() as string) as LogLine & { sent?: number; first_content_ms?: number };
      assert.equal(parsed.status, 499);
      assert.equal(parsed.outcome, 'client_closed');
      assert.equal(parsed.sent, 200);
      // The operation's observer told the log when the first content came (the fake waits 150 ms per event).
      assert.ok(typeof parsed.first_content_ms === 'number' && parsed.first_content_ms >= 100, JSON.stringify(parsed));
    } finally {
      await gateway.close();
    }
  });
});
