import assert from 'node:assert/strict';
import http from 'node:http';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ApiError } from '../src/core/errors.js';
import { SseWriter } from '../src/server/sse.js';
import { serveOnLoopback } from './support/loopback.js';

interface Served {
  url: string;
  /** The writer of the one request served. */
  writer: Promise<{ writer: SseWriter; res: http.ServerResponse }>;
  close(): Promise<void>;
}

async function serve(): Promise<Served> {
  let handOver: (value: { writer: SseWriter; res: http.ServerResponse }) => void = () => undefined;
  const writer = new Promise<{ writer: SseWriter; res: http.ServerResponse }>((resolve) => (handOver = resolve));
  const server = await serveOnLoopback(http.createServer((_req, res) => handOver({ writer: new SseWriter(res, {}), res })));
  return { url: `${server.origin}/`, writer, close: server.close };
}

/** A client that reads in short bursts with pauses between them: the server sees backpressure again and again. */
function slowClient(url: string): { received: Promise<string>; response: Promise<http.IncomingMessage> } {
  let gotResponse: (res: http.IncomingMessage) => void = () => undefined;
  const response = new Promise<http.IncomingMessage>((resolve) => (gotResponse = resolve));
  const received = new Promise<string>((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      gotResponse(res);
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (piece: string) => {
        text += piece;
        res.pause();
        setTimeout(() => res.resume(), 3);
      });
      res.on('end', () => resolve(text));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  return { received, response };
}

describe('SseWriter', () => {
  test('a slow reader does not pile up drain/close listeners (no MaxListenersExceededWarning)', async () => {
    const warnings: Error[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning);
    };
    process.on('warning', onWarning);
    const served = await serve();
    try {
      const client = slowClient(served.url);
      const { writer, res } = await served.writer;
      const payload = 'x'.repeat(20 * 1024); // above the 16 KiB high-water mark: every write pushes back
      let waits = 0;
      let drains = 0;
      res.on('drain', () => drains++);
      const baseDrain = res.listenerCount('drain');
      let maxDrain = 0;
      let maxClose = 0;
      let maxError = 0;
      const baseClose = res.listenerCount('close');
      const baseError = res.listenerCount('error');
      for (let i = 0; i < 600; i++) {
        const pending = writer.send({ i, payload });
        if (pending !== undefined) {
          waits++;
          await pending;
        } else {
          await new Promise<void>((resolve) => setImmediate(resolve));
        }
        maxDrain = Math.max(maxDrain, res.listenerCount('drain') - baseDrain);
        maxClose = Math.max(maxClose, res.listenerCount('close') - baseClose);
        maxError = Math.max(maxError, res.listenerCount('error') - baseError);
      }
      writer.done();
      const text = await client.received;
      assert.ok(drains >= 100, `the buffer filled and drained again and again (${drains} drains)`);
      assert.ok(waits >= 1, 'the slow client made the sender wait');
      assert.ok(maxDrain <= 2, `drain listeners stayed few (max ${maxDrain})`);
      assert.ok(maxClose <= 2, `close listeners stayed few (max ${maxClose} above the baseline, after ${drains} drains)`);
      assert.ok(maxError <= 1, `error listeners stayed few (max ${maxError} above the baseline)`);
      assert.equal(res.listenerCount('drain') - baseDrain, 0);
      assert.ok(text.endsWith('data: [DONE]\n\n'));
      assert.equal(text.split('\n\n').length - 1, 601, 'every event arrived, then [DONE]');
      await sleep(10); // warnings are emitted on the next tick
      assert.deepEqual(
        warnings.filter((w) => w.name === 'MaxListenersExceededWarning').map((w) => w.message),
        [],
      );
    } finally {
      process.off('warning', onWarning);
      await served.close();
    }
  });

  test('fail() after the headers sends the error event then [DONE] and ends; a second fail() or done() adds nothing', async () => {
    const served = await serve();
    try {
      const client = slowClient(served.url);
      const { writer } = await served.writer;
      void writer.send({ hello: 1 });
      writer.fail(new ApiError(503, 'the server is shutting down', { code: 'shutting_down' }));
      writer.fail(new ApiError(500, 'second'));
      writer.fail(new ApiError(500, 'third'));
      writer.done();
      assert.equal(writer.closed, true);
      assert.equal(writer.send({ late: true }), undefined);
      const text = await client.received;
      assert.equal(
        text,
        'data: {"hello":1}\n\n' +
          'data: {"error":{"message":"the server is shutting down","type":"upstream_error","param":null,"code":"shutting_down"}}\n\n' +
          'data: [DONE]\n\n',
      );
    } finally {
      await served.close();
    }
  });

  test('fail() releases a sender waiting on backpressure even if the client never reads again', async () => {
    const served = await serve();
    let clientRes: http.IncomingMessage | undefined;
    try {
      const client = new Promise<http.IncomingMessage>((resolve, reject) => {
        http
          .get(served.url, { agent: false }, (res) => {
            res.pause(); // and never reads
            resolve(res);
          })
          .on('error', reject);
      });
      const { writer, res } = await served.writer;
      void writer.send({ first: true }); // the headers go out with the first event
      clientRes = await client;
      const payload = 'y'.repeat(64 * 1024);
      let pending: Promise<void> | undefined;
      for (let i = 0; i < 2000 && pending === undefined; i++) {
        pending = writer.send({ payload });
        await new Promise<void>((resolve) => setImmediate(resolve));
        pending ??= writer.send({ payload });
      }
      assert.ok(pending !== undefined, 'the paused client pushed back');
      assert.equal(res.listenerCount('drain'), 1);
      writer.fail(new ApiError(503, 'the server is shutting down'));
      const released = await Promise.race([pending.then(() => true), sleep(1000).then(() => false)]);
      assert.equal(released, true, 'the waiting sender was released');
      assert.equal(res.listenerCount('drain'), 0);
      assert.equal(writer.closed, true);
    } finally {
      clientRes?.destroy();
      await served.close();
    }
  });
});
