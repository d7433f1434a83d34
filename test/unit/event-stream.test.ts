/**
 * The one reader of streamed upstream bodies (src/core/event-stream.ts), in process, without a
 * socket: backpressure, nothing lost, `return()` drops the body, and after the protocol's last
 * event what is left is read out politely (the connection can be reused) but not decoded.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { describe, test } from 'node:test';
import { readEventStream, sseDecoder } from '../../src/core/event-stream.js';
import { UpstreamError } from '../../src/core/errors.js';

const never = new AbortController().signal;

describe('readEventStream', () => {
  test('drops a leading byte order mark and keeps UTF-8 characters split across reads whole', async () => {
    const body = new PassThrough();
    const reader = readEventStream(body, never, sseDecoder(1024));
    const bytes = Buffer.from('\uFEFFdata: héllo\n\ndata: wörld \u{1F600}\n\n');
    // The BOM's 3 bytes, é's 2 and the emoji's 4 each cut across reads.
    for (const cut of [
      [0, 1],
      [1, 2],
      [2, 11],
      [11, 13],
      [13, 31],
      [31, 32],
      [32, bytes.length],
    ])
      body.write(bytes.subarray(cut[0], cut[1]));
    body.end();
    const data: string[] = [];
    for await (const event of reader) data.push(event.data);
    assert.deepEqual(data, ['héllo', 'wörld \u{1F600}']);
  });

  test('pauses the body while the consumer lags, resumes as it catches up, and loses nothing', async () => {
    const body = new PassThrough();
    const reader = readEventStream(body, never, sseDecoder(1024));
    const total = 300;
    for (let i = 0; i < total; i++) body.write(`event: ping\r\ndata: {"n":${i}}\r\n\r\n`);
    body.end();
    await tick();
    assert.equal(body.isPaused(), true, 'paused past the high-water mark');
    const seen: number[] = [];
    for await (const event of reader) {
      assert.equal(event.event, 'ping');
      seen.push((JSON.parse(event.data) as { n: number }).n);
    }
    assert.deepEqual(
      seen,
      Array.from({ length: total }, (_, i) => i),
    );
  });

  test('return() destroys the body; after the last event the body is read to its end, not decoded', async () => {
    const dropped = new PassThrough();
    const reader = readEventStream(dropped, never, sseDecoder(1024));
    dropped.write('data: {}\n\n');
    assert.equal((await reader.next()).done, false);
    await reader.return();
    assert.equal(dropped.destroyed, true);

    const finished = new PassThrough();
    const polite = readEventStream(
      finished,
      never,
      sseDecoder(1024, (event) => event.event === 'message_stop'),
    );
    finished.write('data: {}\n\nevent: message_stop\ndata: {}\n\n');
    assert.equal((await polite.next()).value?.data, '{}');
    assert.equal((await polite.next()).value?.event, 'message_stop');
    finished.end('data: {"ignored":true}\n\n');
    assert.deepEqual(await polite.next(), { value: undefined, done: true });
    await new Promise((resolve) => finished.once('end', resolve));
    assert.equal(finished.readableEnded, true, 'read to its end, not dropped');
  });

  test('an oversized event stops reading at once, after what was decoded before it', async () => {
    const body = new PassThrough();
    const reader = readEventStream(body, never, sseDecoder(1024));
    body.write('data: first\n\n');
    body.write(`data: ${'x'.repeat(4096)}`);
    assert.equal((await reader.next()).value?.data, 'first');
    await assert.rejects(reader.next(), (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response');
    assert.equal(body.destroyed, true);
  });

  test('a body that ends before the protocol says it is over is an error of the decoder', async () => {
    const body = new PassThrough();
    const reader = readEventStream(body, never, {
      push: (text: string) => [text],
      end: () => {
        throw new UpstreamError('connection', 'ended early');
      },
    });
    body.end('abc');
    assert.equal((await reader.next()).value, 'abc');
    await assert.rejects(reader.next(), /ended early/);
  });
});
