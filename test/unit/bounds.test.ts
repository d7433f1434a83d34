/**
 * In-process unit tests of the bounds the core keeps whatever an upstream or a client sends:
 * the SSE parser (every split of the input gives the same events; one event is capped), the
 * aggregator's byte cap, `retry-after` clamping, redirects as failures, and provider-id limits.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { completionFromChunks } from '../../src/core/aggregate.js';
import { UpstreamError, kindForStatus, maxRetryAfterSeconds, parseRetryAfter } from '../../src/core/errors.js';
import { ApiError } from '../../src/core/errors.js';
import { parseProviderField } from '../../src/core/selection.js';
import { SseParser, type SseEvent } from '../../src/core/sse-parser.js';
import type { ChatChunk } from '../../src/core/types.js';

function parseAll(pieces: readonly string[], max?: number): SseEvent[] {
  const parser = new SseParser(max);
  const events: SseEvent[] = [];
  for (const piece of pieces) events.push(...parser.push(piece));
  events.push(...parser.end());
  return events;
}

describe('SseParser', () => {
  const stream = 'event: a\r\ndata: one\r\ndata: two\r\n\r\n: comment\n\ndata:three\r\rdata: {"x":1}\n\ndata: last';
  const expected: SseEvent[] = [
    { event: 'a', data: 'one\ntwo' },
    { event: 'message', data: 'three' },
    { event: 'message', data: '{"x":1}' },
    { event: 'message', data: 'last' },
  ];

  test('gives the same events for every split of the input into two and three pieces', () => {
    assert.deepEqual(parseAll([stream]), expected);
    for (let i = 0; i <= stream.length; i++) {
      assert.deepEqual(parseAll([stream.slice(0, i), stream.slice(i)]), expected, `split at ${i}`);
      for (let j = i; j <= stream.length; j += 7) {
        assert.deepEqual(parseAll([stream.slice(0, i), stream.slice(i, j), stream.slice(j)]), expected, `split at ${i}, ${j}`);
      }
    }
  });

  test('one character at a time, CR LF split across pieces, is one line ending', () => {
    assert.deepEqual(parseAll([...stream]), expected);
    assert.deepEqual(parseAll(['data: x\r', '\n', '\r', '\n']), [{ event: 'message', data: 'x' }]);
  });

  test('a line that never ends fails at the cap instead of growing', () => {
    const parser = new SseParser(1024);
    parser.push('data: {"id":"');
    assert.throws(
      () => {
        for (let i = 0; i < 100; i++) parser.push('x'.repeat(100));
      },
      (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response' && /larger than 1024/.test(error.message),
    );
  });

  test('many data lines of one event count together against the cap', () => {
    const parser = new SseParser(1000);
    assert.throws(() => {
      for (let i = 0; i < 100; i++) parser.push(`data: ${'y'.repeat(50)}\n`);
    }, UpstreamError);
    // Events under the cap, one after the other, never add up.
    const ok = new SseParser(1000);
    let count = 0;
    for (let i = 0; i < 1000; i++) count += ok.push(`data: ${'z'.repeat(500)}\n\n`).length;
    assert.equal(count, 1000);
  });
});

async function* chunksOf(list: ChatChunk[]): AsyncGenerator<ChatChunk> {
  yield* list;
}

const chunk = (delta: Record<string, unknown>, index = 0): ChatChunk => ({
  id: 'c',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index, delta, finish_reason: null }],
});

describe('completionFromChunks', () => {
  test('merges content and tool calls under the cap', async () => {
    const completion = await completionFromChunks(
      chunksOf([chunk({ content: 'Hel' }), chunk({ content: 'lo' }), chunk({ tool_calls: [{ index: 0, id: 't', function: { name: 'f', arguments: '{}' } }] })]),
      10_000,
    );
    assert.equal(completion.choices[0]?.message.content, 'Hello');
    assert.equal(completion.choices[0]?.message.tool_calls?.[0]?.function.name, 'f');
  });

  test('an answer past the cap fails as a bad response, however it grows', async () => {
    const endless = async function* (): AsyncGenerator<ChatChunk> {
      for (let i = 0; ; i++) yield chunk({ content: 'word ' });
    };
    await assert.rejects(completionFromChunks(endless(), 4096), (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response');
    const manyChoices = async function* (): AsyncGenerator<ChatChunk> {
      for (let i = 0; i < 1024; i++) yield chunk({}, i);
    };
    await assert.rejects(completionFromChunks(manyChoices(), 4096), UpstreamError);
    const toolArguments = async function* (): AsyncGenerator<ChatChunk> {
      for (;;) yield chunk({ tool_calls: [{ index: 0, function: { arguments: 'aaaa' } }] });
    };
    await assert.rejects(completionFromChunks(toolArguments(), 4096), UpstreamError);
  });

  test('null choices and wild indexes are bad responses, not TypeErrors', async () => {
    const nullChoice = { ...chunk({}), choices: [null] } as unknown as ChatChunk;
    await assert.rejects(completionFromChunks(chunksOf([nullChoice])), (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response');
    await assert.rejects(completionFromChunks(chunksOf([chunk({}, 1e9)])), UpstreamError);
    const badTool = chunk({ tool_calls: [{ index: -1 }] });
    await assert.rejects(completionFromChunks(chunksOf([badTool])), UpstreamError);
  });
});

describe('retry-after and redirects', () => {
  test('negative and unreadable waits are ignored; long ones are clamped', () => {
    assert.equal(parseRetryAfter({ 'retry-after': '-5' }), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': 'soon' }), undefined);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '-100' }), undefined);
    assert.equal(parseRetryAfter({ 'retry-after': '7' }), 7);
    assert.equal(parseRetryAfter({ 'retry-after-ms': '1500' }), 1.5);
    assert.equal(parseRetryAfter({ 'retry-after': '99999999' }), maxRetryAfterSeconds);
    assert.equal(parseRetryAfter({ 'retry-after': 'Fri, 01 Jan 2100 00:00:00 GMT' }), maxRetryAfterSeconds);
    assert.equal(parseRetryAfter({ 'retry-after': 'Thu, 01 Jan 1970 00:00:00 GMT' }), 0);
  });

  test('a redirect status is a bad response, never a status of ours', () => {
    for (const status of [301, 302, 303, 307, 308]) assert.equal(kindForStatus(status), 'bad_response');
    assert.equal(kindForStatus(429), 'rate_limit');
  });
});

describe('provider field limits', () => {
  const isBadRequest = (code: string) => (error: unknown) => error instanceof ApiError && error.status === 400 && error.code === code;

  test('at most 32 ids of at most 64 characters, in every form', () => {
    assert.equal(parseProviderField(Array.from({ length: 32 }, (_, i) => `P${i}`).join(' ')).order?.length, 32);
    assert.throws(() => parseProviderField(Array.from({ length: 33 }, (_, i) => `P${i}`).join(' ')), isBadRequest('too_many_providers'));
    assert.throws(() => parseProviderField('a '.repeat(1_000_000)), isBadRequest('too_many_providers'));
    assert.throws(() => parseProviderField(['x'.repeat(65)]), isBadRequest('invalid_provider'));
    assert.throws(() => parseProviderField(Array.from({ length: 1000 }, () => 'a')), isBadRequest('too_many_providers'));
    assert.throws(() => parseProviderField({ order: ['A'], ignore: Array.from({ length: 40 }, () => 'b') }), isBadRequest('too_many_providers'));
  });
});
