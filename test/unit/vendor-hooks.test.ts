/**
 * Vendors' quirks live with their declarations (hooks), not in the core: Groq's stream usage in
 * `x_groq.usage`, Mistral's `random_seed` and `max_tokens`. In process, without a socket.
 */
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { describe, test } from 'node:test';
import { rawJson, serialize } from '../../src/core/normalize.js';
import type { ChatChunk } from '../../src/core/types.js';
import { openAICompatibleCatalog } from '../../src/providers/openai-compatible/catalog.js';
import { chunksFromSse } from '../../src/providers/openai-compatible/sse-chunks.js';

const declaration = (id: string) => {
  const found = openAICompatibleCatalog.find((entry) => entry.id === id);
  assert.ok(found, id);
  return found;
};

describe('vendor hooks', () => {
  test("Groq: the last chunk's x_groq.usage becomes usage, and the upstream's text is no longer spliced", async () => {
    const mapChunk = declaration('Groq').hooks?.mapChunk;
    assert.ok(mapChunk);
    const body = new PassThrough();
    const chunks = chunksFromSse(body, new AbortController().signal, 1 << 20, mapChunk);
    const usage = { prompt_tokens: 3, completion_tokens: 2, total_tokens: 5 };
    body.end(
      [
        'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}',
        `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_1","usage":${JSON.stringify(usage)}}}`,
        'data: [DONE]',
        '',
      ].join('\n\n'),
    );
    const seen: ChatChunk[] = [];
    for await (const chunk of chunks) seen.push(chunk);
    assert.equal(seen.length, 2);
    assert.equal(seen[0]?.usage, undefined);
    assert.ok((seen[0] as { [rawJson]?: string })[rawJson] !== undefined, 'an untouched chunk keeps its text');
    assert.deepEqual(seen[1]?.usage, usage);
    assert.equal((seen[1] as { [rawJson]?: string })[rawJson], undefined, 'a changed chunk is serialised anew');
    assert.deepEqual(JSON.parse(serialize({ ...(seen[1] as ChatChunk), provider: 'Groq' })).usage, usage);
    // Usage already there is left alone.
    const withUsage = { ...(seen[1] as ChatChunk), usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 } };
    assert.equal(mapChunk(withUsage), false);
  });

  test('Mistral: seed is sent as random_seed, max_completion_tokens as max_tokens', () => {
    const mapRequest = declaration('Mistral').hooks?.mapRequest;
    assert.ok(mapRequest);
    const body: Record<string, unknown> = { model: 'm', seed: 7, max_completion_tokens: 9 };
    mapRequest(body);
    assert.deepEqual(body, { model: 'm', random_seed: 7, max_tokens: 9 });
    const both: Record<string, unknown> = { max_tokens: 5, max_completion_tokens: 9 };
    mapRequest(both);
    assert.deepEqual(both, { max_tokens: 5 });
  });
});
