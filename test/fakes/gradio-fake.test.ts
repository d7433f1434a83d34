/**
 * Tests of the fake Gradio server itself: exact SSE bytes of both protocols, files, behaviours, auth,
 * legacy paths, several Spaces, disconnects and close().
 * Run: node --import tsx --test test/fakes/gradio-fake.test.ts
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, describe, it } from 'node:test';
import zlib from 'node:zlib';
import { call, type Answer } from '../support/http.js';
import { waitFor } from '../support/wait.js';
import { pyJsonDumps, startGradioFake, TINY_PNG, ZEROGPU_QUOTA_MESSAGE, type GradioFake, type SpaceSpec } from './gradio-fake.js';

const SCHNELL = 'black-forest-labs/FLUX.1-schnell';
const DEV = 'black-forest-labs/FLUX.1-dev';
const SCHNELL_INPUTS = ['a red fox', 42, false, 1024, 1024, 4];
const FAST = { heartbeatMs: 10, workMs: 35 };

const fakes: GradioFake[] = [];
async function fake(...spaces: SpaceSpec[]): Promise<GradioFake> {
  const f = await startGradioFake(spaces);
  fakes.push(f);
  return f;
}
after(async () => {
  await Promise.all(fakes.map((f) => f.close()));
});

const space = (f: GradioFake, name: string, api = '/gradio_api'): string => `${f.url}/${name}${api}`;

async function postCall(f: GradioFake, name: string, data: unknown[], headers?: Record<string, string>): Promise<string> {
  const res = await call(`${space(f, name)}/call/infer`, { body: { data }, headers });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.headers['content-type'], 'application/json');
  assert.match(res.text, /^\{"event_id":"[0-9a-f]{32}"\}$/);
  return (JSON.parse(res.text) as { event_id: string }).event_id;
}

/** The events of a finished SSE body (each without its `\n\n` terminator); asserts the framing. */
function sseEvents(text: string): string[] {
  assert.ok(text.endsWith('\n\n'), `stream must end with a blank line: ${JSON.stringify(text.slice(-40))}`);
  return text.slice(0, -2).split('\n\n');
}

async function callFlow(f: GradioFake, name: string, data: unknown[]): Promise<{ id: string; events: string[]; res: Answer }> {
  const id = await postCall(f, name, data);
  const res = await call(`${space(f, name)}/call/infer/${id}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  return { id, events: sseEvents(res.text), res };
}

interface QueueMessage {
  msg: string;
  event_id: string | null;
  [key: string]: unknown;
}

async function queueFlow(f: GradioFake, name: string, data: unknown[], fnIndex = 2): Promise<{ id: string; lines: string[]; messages: QueueMessage[] }> {
  const session = 'sess' + Math.random().toString(16).slice(2);
  const join = await call(`${space(f, name)}/queue/join?__theme=light`, {
    body: { data, event_data: null, fn_index: fnIndex, trigger_id: 4, session_hash: session },
  });
  assert.equal(join.status, 200, join.text);
  const id = (JSON.parse(join.text) as { event_id: string }).event_id;
  const res = await call(`${space(f, name)}/queue/data?session_hash=${session}`);
  assert.equal(res.status, 200);
  assert.equal(res.headers['content-type'], 'text/event-stream; charset=utf-8');
  const lines = sseEvents(res.text);
  for (const line of lines) assert.match(line, /^data: \{/, 'queue messages have no event: line');
  return { id, lines, messages: lines.map((l) => JSON.parse(l.slice('data: '.length)) as QueueMessage) };
}

/** Opens an event stream with node:http (no pooling), collects text until `until` holds. */
async function openStream(url: string, until: (text: string) => boolean): Promise<{ text: string; req: http.ClientRequest }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        text += chunk;
        if (until(text)) resolve({ text, req });
      });
      res.on('error', () => undefined);
    });
    req.on('error', reject);
  });
}

const fileDataRe = (origin: string, name: string, file: string, api = '/gradio_api'): string =>
  `\\{"path": "(/tmp/gradio/[0-9a-f]{40}/${file})", "url": "${origin}/${name}${api}/file=\\1", "size": null, "orig_name": "${file}", ` +
  `"mime_type": null, "is_stream": false, "meta": \\{"_type": "gradio.FileData"\\}\\}`;
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

describe('gradio fake', () => {
  it('TINY_PNG is a valid 1x1 PNG and pyJsonDumps matches Python json.dumps', () => {
    assert.deepEqual([...TINY_PNG.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    assert.equal(TINY_PNG.readUInt32BE(16), 1);
    assert.equal(TINY_PNG.readUInt32BE(20), 1);
    let at = 8;
    const types: string[] = [];
    while (at < TINY_PNG.length) {
      const len = TINY_PNG.readUInt32BE(at);
      const typed = TINY_PNG.subarray(at + 4, at + 8 + len);
      assert.equal(TINY_PNG.readUInt32BE(at + 8 + len), zlib.crc32(typed), 'chunk crc');
      types.push(typed.subarray(0, 4).toString('latin1'));
      if (types.at(-1) === 'IDAT') assert.deepEqual([...zlib.inflateSync(typed.subarray(4))], [0, 0xff, 0x66, 0]);
      at += 12 + len;
    }
    assert.deepEqual(types, ['IHDR', 'IDAT', 'IEND']);
    assert.equal(pyJsonDumps({ a: [1, 'é', null, true], b: {} }), '{"a": [1, "\\u00e9", null, true], "b": {}}');
  });

  it('call protocol: heartbeats then complete with exact json.dumps bytes, file download, seed echo', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', ...FAST });
    const { id, events, res } = await callFlow(f, SCHNELL, SCHNELL_INPUTS);
    const last = events.pop() ?? '';
    assert.ok(events.length >= 1, 'at least one heartbeat');
    for (const e of events) assert.equal(e, 'event: heartbeat\ndata: null');
    const m = new RegExp(`^event: complete\\ndata: \\[${fileDataRe(f.url, SCHNELL, 'image.png')}, 42\\]$`).exec(last);
    assert.ok(m, last);
    assert.ok(res.text.endsWith('42]\n\n'));

    const file = await call(`${space(f, SCHNELL)}/file=${m[1]}`);
    assert.equal(file.status, 200);
    assert.equal(file.headers['content-type'], 'image/png');
    assert.ok(file.bytes.equals(TINY_PNG));
    assert.equal((await call(`${space(f, SCHNELL)}/file=/tmp/gradio/nope/image.png`)).status, 404);

    assert.equal((await call(`${space(f, SCHNELL)}/call/infer/${id}`)).status, 404, 'an event is streamed once');
    assert.equal((await call(`${space(f, SCHNELL)}/call/infer/${'0'.repeat(32)}`)).status, 404);
    assert.equal(f.openStreams(), 0);
    const post = f.requests.find((r) => r.method === 'POST');
    assert.deepEqual(post?.body, { data: SCHNELL_INPUTS });
    assert.equal(post?.space, SCHNELL);
  });

  it('call protocol: randomize_seed returns another seed; wrong api name 500; bad bodies 422', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', heartbeatMs: 50, workMs: 5 });
    const { events } = await callFlow(f, SCHNELL, ['x', 7, true, 512, 512, 2]);
    const seed = Number(/, (\d+)\]$/.exec(events.at(-1) ?? '')?.[1]);
    assert.ok(Number.isInteger(seed) && seed !== 7 && seed >= 0 && seed <= 2147483647, String(seed));

    const wrong = await call(`${space(f, SCHNELL)}/call/other`, { body: { data: [] } });
    assert.equal(wrong.status, 500);
    assert.equal(wrong.text, 'Internal Server Error');
    const notJson = await call(`${space(f, SCHNELL)}/call/infer`, { body: '{oops' });
    assert.equal(notJson.status, 422);
    assert.match(notJson.text, /"json_invalid"/);
    const noData = await call(`${space(f, SCHNELL)}/call/infer`, { body: { prompt: 'x' } });
    assert.equal(noData.status, 422);
    assert.match(noData.text, /"loc":\["body","data"\]/);
  });

  it('queue protocol: message order and exact compact bytes, close_stream, custom webp file', async () => {
    const webp = Buffer.concat([Buffer.from('RIFF\x10\x00\x00\x00WEBPVP8 ', 'latin1'), Buffer.alloc(8)]);
    const f = await fake({ space: DEV, protocol: 'queue', image: webp, ...FAST });
    const { id, lines, messages } = await queueFlow(f, DEV, ['a cat', 0, true, 1024, 1024, 3.5, 28]);
    const hb = 'data: {"msg":"heartbeat","event_id":null}';
    assert.ok(lines.includes(hb), 'a heartbeat while working');
    const rest = lines.filter((l) => l !== hb);
    assert.equal(rest[0], `data: {"msg":"estimation","event_id":"${id}","rank":0,"queue_size":1,"rank_eta":null}`);
    assert.equal(rest[1], `data: {"msg":"process_starts","event_id":"${id}","eta":null}`);
    for (let i = 1; i <= 4; i++) {
      assert.equal(
        rest[1 + i],
        `data: {"msg":"progress","event_id":"${id}","progress_data":[{"index":${i},"length":4,"unit":"steps","progress":null,"desc":null}]}`,
      );
    }
    assert.equal(rest.at(-1), 'data: {"msg":"close_stream","event_id":null}');
    assert.equal(rest.length, 8);
    const done = messages.find((m) => m.msg === 'process_completed');
    assert.ok(done);
    assert.match(
      rest[6] ?? '',
      new RegExp(
        `^data: \\{"msg":"process_completed","event_id":"${id}","output":\\{"data":\\[\\{"path":"(/tmp/gradio/[0-9a-f]{40}/image.webp)",` +
          `"url":"${escapeRe(f.url)}/${escapeRe(DEV)}/gradio_api/file=\\1","size":null,"orig_name":"image.webp","mime_type":null,"is_stream":false,` +
          `"meta":\\{"_type":"gradio.FileData"\\}\\},\\d+\\],"is_generating":false,"duration":[\\d.]+,"average_duration":[\\d.]+,` +
          `"render_config":null,"changed_state_ids":\\[\\]\\},"success":true,"title":null\\}$`,
      ),
    );
    const output = done.output as { data: [{ url: string }, number] };
    assert.notEqual(output.data[1], 0, 'randomized seed');
    const file = await call(output.data[0].url);
    assert.equal(file.headers['content-type'], 'image/webp');
    assert.ok(file.bytes.equals(webp));
    assert.deepEqual(f.requests[0]?.body, {
      data: ['a cat', 0, true, 1024, 1024, 3.5, 28],
      event_data: null,
      fn_index: 2,
      trigger_id: 4,
      session_hash: (f.requests[0]?.body as { session_hash: string }).session_hash,
    });
    assert.equal(f.requests[0]?.path.endsWith('/queue/join?__theme=light'), true);
  });

  it('queue protocol errors: missing session_hash 400, wrong fn_index 500, unknown session 404', async () => {
    const f = await fake({ space: DEV, protocol: 'queue', fnIndex: 3, ...FAST });
    const url = `${space(f, DEV)}/queue/join`;
    const noSession = await call(url, { body: { data: [], fn_index: 3 } });
    assert.deepEqual([noSession.status, noSession.text], [400, '{"detail":"Session hash not found."}']);
    const wrongFn = await call(url, { body: { data: [], fn_index: 2, session_hash: 's' } });
    assert.deepEqual([wrongFn.status, wrongFn.text], [500, 'Internal Server Error']);
    assert.equal((await call(`${space(f, DEV)}/queue/data?session_hash=unknown`)).status, 404);
    assert.equal((await call(`${space(f, DEV)}/queue/data`)).status, 422);
    const ok = await queueFlow(f, DEV, ['p', 1, false, 256, 256, 2], 3);
    assert.equal(ok.messages.filter((m) => m.msg === 'progress').length, 2);
    assert.deepEqual((ok.messages.find((m) => m.msg === 'process_completed')?.output as { data: unknown[] }).data[1], 1);
  });

  it('behaviours on both protocols', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', ...FAST });
    const joinBody = { data: SCHNELL_INPUTS, event_data: null, fn_index: 2, trigger_id: 4, session_hash: 'hb' };

    f.setBehaviour(SCHNELL, { kind: 'queue-full' });
    for (const url of [`${space(f, SCHNELL)}/call/infer`, `${space(f, SCHNELL)}/queue/join`]) {
      const r = await call(url, { body: url.endsWith('infer') ? { data: SCHNELL_INPUTS } : joinBody });
      assert.deepEqual([r.status, r.text], [503, '{"detail":"Queue is full. Max size is 20 and size is 20."}']);
    }

    f.setBehaviour(SCHNELL, { kind: 'zerogpu-quota' });
    const quota = await callFlow(f, SCHNELL, SCHNELL_INPUTS);
    assert.deepEqual(quota.events, [
      `event: error\ndata: {"error": ${JSON.stringify(ZEROGPU_QUOTA_MESSAGE)}, "duration": null, "visible": true, "title": "Error"}`,
    ]);
    assert.ok(ZEROGPU_QUOTA_MESSAGE.startsWith('You have exceeded your GPU quota (60s requested vs. 56s left). <a '));
    const quotaQ = await queueFlow(f, SCHNELL, SCHNELL_INPUTS);
    assert.deepEqual(
      quotaQ.messages.map((m) => m.msg),
      ['estimation', 'process_starts', 'process_completed', 'close_stream'],
    );
    const failed = quotaQ.messages[2];
    assert.equal(failed?.success, false);
    assert.equal((failed?.output as { error: string }).error, ZEROGPU_QUOTA_MESSAGE);

    f.setBehaviour(SCHNELL, { kind: 'error-null' });
    assert.deepEqual((await callFlow(f, SCHNELL, SCHNELL_INPUTS)).events, ['event: error\ndata: null']);
    const nullQ = await queueFlow(f, SCHNELL, SCHNELL_INPUTS);
    assert.equal(nullQ.lines[2], `data: {"msg":"process_completed","event_id":"${nullQ.id}","output":{"error":null},"success":false,"title":null}`);

    f.setBehaviour(SCHNELL, { kind: 'unexpected-error' });
    assert.deepEqual((await callFlow(f, SCHNELL, SCHNELL_INPUTS)).events, ['event: error\ndata: "Server stopped unexpectedly."']);
    const unexpected = await queueFlow(f, SCHNELL, SCHNELL_INPUTS);
    assert.deepEqual(unexpected.lines, [
      'data: {"msg":"unexpected_error","event_id":null,"message":"Server stopped unexpectedly.","session_not_found":false,"success":false}',
    ]);

    f.setBehaviour(SCHNELL, { kind: 'http-status', status: 500, body: 'Internal Server Error' });
    const plain = await call(`${space(f, SCHNELL)}/call/infer`, { body: { data: [] } });
    assert.deepEqual([plain.status, plain.text, plain.headers['content-type']], [500, 'Internal Server Error', 'text/plain; charset=utf-8']);
    f.setBehaviour(SCHNELL, { kind: 'http-status', status: 422, body: '{"detail":"bad width"}' });
    const invalid = await call(`${space(f, SCHNELL)}/queue/join`, { body: joinBody });
    assert.deepEqual([invalid.status, invalid.text, invalid.headers['content-type']], [422, '{"detail":"bad width"}', 'application/json']);

    // a function of the job index: the first fails, the second works
    f.setBehaviour(SCHNELL, (i) => (i % 2 === 0 ? { kind: 'queue-full' } : { kind: 'ok' }));
    const before = f.requests.length;
    assert.equal((await call(`${space(f, SCHNELL)}/call/infer`, { body: { data: SCHNELL_INPUTS } })).status, 503);
    const okFlow = await callFlow(f, SCHNELL, SCHNELL_INPUTS);
    assert.match(okFlow.events.at(-1) ?? '', /^event: complete\n/);
    assert.equal(f.requests.length, before + 3);
  });

  it('hang: heartbeats only; a client that leaves closes the stream and its timers', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', behaviour: { kind: 'hang' }, heartbeatMs: 5, workMs: 5 });
    const timers = (): number => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    const baseline = timers();
    const id = await postCall(f, SCHNELL, SCHNELL_INPUTS);
    const call1 = await openStream(`${space(f, SCHNELL)}/call/infer/${id}`, (t) => t.split('\n\n').length > 4);
    assert.ok(/^(event: heartbeat\ndata: null\n\n)+/.test(call1.text));
    assert.ok(!call1.text.includes('complete'));

    await call(`${space(f, SCHNELL)}/queue/join`, { body: { data: SCHNELL_INPUTS, fn_index: 2, session_hash: 'h1' } });
    const q = await openStream(`${space(f, SCHNELL)}/queue/data?session_hash=h1`, (t) => t.split('\n\n').length > 3);
    for (const line of q.text.split('\n\n').slice(0, -1)) assert.equal(line, 'data: {"msg":"heartbeat","event_id":null}');
    assert.equal(f.openStreams(), 2);
    assert.ok(timers() > baseline);

    call1.req.destroy();
    await waitFor(() => f.openStreams() === 1, 'the call stream to close');
    q.req.destroy();
    await waitFor(() => f.openStreams() === 0, 'the queue stream to close');
    await waitFor(() => timers() <= baseline, 'the heartbeat timers to stop');
    assert.equal((await call(`${space(f, SCHNELL)}/queue/data?session_hash=h1`)).status, 404, 'a left session is cleaned');
  });

  it('private Space: Bearer token required', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', token: 'hf_secret', ...FAST });
    const none = await call(`${space(f, SCHNELL)}/call/infer`, { body: { data: SCHNELL_INPUTS } });
    assert.equal(none.status, 401);
    assert.match(none.text, /^\{"detail":"[^"]+"\}$/);
    const wrong = await call(`${space(f, SCHNELL)}/call/infer`, { body: { data: SCHNELL_INPUTS }, headers: { authorization: 'Bearer nope' } });
    assert.equal(wrong.status, 401);
    const auth = { authorization: 'Bearer hf_secret' };
    const id = await postCall(f, SCHNELL, SCHNELL_INPUTS, auth);
    assert.equal((await call(`${space(f, SCHNELL)}/call/infer/${id}`)).status, 401);
    const res = await call(`${space(f, SCHNELL)}/call/infer/${id}`, { headers: auth });
    const url = /"url": "([^"]+)"/.exec(res.text)?.[1] ?? '';
    assert.equal((await call(url)).status, 401);
    assert.ok((await call(url, { headers: auth })).bytes.equals(TINY_PNG));
  });

  it('legacy gradio-4 root paths', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', gradioPrefix: false, ...FAST });
    const post = await call(`${space(f, SCHNELL, '')}/call/infer`, { body: { data: SCHNELL_INPUTS } });
    assert.equal(post.status, 200);
    const id = (JSON.parse(post.text) as { event_id: string }).event_id;
    const res = await call(`${space(f, SCHNELL, '')}/call/infer/${id}`);
    const last = sseEvents(res.text).at(-1) ?? '';
    const m = new RegExp(`^event: complete\\ndata: \\[${fileDataRe(f.url, SCHNELL, 'image.png', '')}, 42\\]$`).exec(last);
    assert.ok(m, last);
    assert.ok((await call(`${space(f, SCHNELL, '')}/file=${m[1]}`)).bytes.equals(TINY_PNG));
    const prefixed = await call(`${space(f, SCHNELL)}/call/infer`, { body: { data: SCHNELL_INPUTS } });
    assert.deepEqual([prefixed.status, prefixed.text], [404, '{"detail":"Not Found"}']);
  });

  it('several Spaces on one fake; unknown routes 404 like FastAPI', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', ...FAST }, { space: DEV, protocol: 'queue', behaviour: { kind: 'zerogpu-quota' }, ...FAST });
    const schnell = await callFlow(f, SCHNELL, SCHNELL_INPUTS);
    assert.match(schnell.events.at(-1) ?? '', /^event: complete\n/);
    const dev = await queueFlow(f, DEV, SCHNELL_INPUTS);
    assert.equal(dev.messages.find((m) => m.msg === 'process_completed')?.success, false);
    assert.deepEqual([...new Set(f.requests.map((r) => r.space))], [SCHNELL, DEV]);

    for (const url of [`${f.url}/nobody/nothing/gradio_api/call/infer`, `${space(f, SCHNELL)}/unknown`, `${f.url}/`]) {
      const r = await call(url);
      assert.deepEqual([r.status, r.text, r.headers['content-type']], [404, '{"detail":"Not Found"}', 'application/json']);
    }
    assert.equal((await call(`${space(f, SCHNELL)}/queue/join`)).status, 405);
    assert.throws(() => f.setBehaviour('nobody/nothing', { kind: 'ok' }));
  });

  it('close() ends open streams and stops listening', async () => {
    const f = await fake({ space: SCHNELL, protocol: 'call', behaviour: { kind: 'hang' }, heartbeatMs: 5 });
    const id = await postCall(f, SCHNELL, SCHNELL_INPUTS);
    const open = await openStream(`${space(f, SCHNELL)}/call/infer/${id}`, (t) => t.includes('heartbeat'));
    const ended = new Promise<void>((resolve) => open.req.once('close', () => resolve()));
    assert.equal(f.openStreams(), 1);
    await f.close();
    await ended;
    assert.equal(f.openStreams(), 0);
    await assert.rejects(call(`${space(f, SCHNELL)}/call/infer`, { body: { data: [] } }));
    await f.close(); // idempotent
  });
});
