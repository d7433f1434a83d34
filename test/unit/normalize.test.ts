/**
 * Normalisation of upstream answers to OpenAI's shapes (src/core/normalize.ts), in process: the
 * envelope, the choices, finish reasons, usage, the `provider` stamp, the upstream's own text kept
 * (and spliced by `serialize`) only while nothing else changed, and `hasContent`.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { UpstreamError } from '../../src/core/errors.js';
import { hasContent, normalizeChunk, normalizeCompletion, rawJson, serialize } from '../../src/core/normalize.js';
import type { ChatChunk, ChatCompletion } from '../../src/core/types.js';

type Raw = { [rawJson]?: string };

/** Parses JSON text the way the providers do: the object with its own text attached. */
function parsed<T>(text: string): T & Raw {
  const value = JSON.parse(text) as T & Raw;
  value[rawJson] = text;
  return value;
}

const isBadResponse = (error: unknown) => error instanceof UpstreamError && error.kind === 'bad_response';

const completionText = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion',
  created: 1700000000,
  model: 'm-1',
  system_fingerprint: 'fp',
  choices: [{ index: 0, message: { role: 'assistant', content: 'Hi', refusal: null }, logprobs: null, finish_reason: 'stop' }],
  usage: { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 },
});

const chunkText = JSON.stringify({
  id: 'chatcmpl-1',
  object: 'chat.completion.chunk',
  created: 1700000000,
  model: 'm-1',
  choices: [{ index: 0, delta: { content: 'Hi' }, finish_reason: null }],
});

describe('normalizeCompletion', () => {
  test('a conforming completion only gets provider, keeps its text, and serialize splices provider in exactly', () => {
    const completion = parsed<ChatCompletion>(completionText);
    const normalized = normalizeCompletion(completion, 'Groq', 'fallback');
    assert.equal(normalized, completion, 'normalised in place');
    assert.equal(normalized.provider, 'Groq');
    assert.equal((normalized as Raw)[rawJson], completionText);
    const text = serialize(normalized);
    assert.equal(text, `${completionText.slice(0, -1)},"provider":"Groq"}`);
    assert.deepEqual(JSON.parse(text), { ...(JSON.parse(completionText) as object), provider: 'Groq' });
  });

  test('serialize escapes the provider id as JSON', () => {
    const completion = normalizeCompletion(parsed<ChatCompletion>(completionText), 'we"ird\\id', 'fallback');
    assert.equal((JSON.parse(serialize(completion)) as { provider: string }).provider, 'we"ird\\id');
  });

  test('fixes the envelope: object, id, created, model fallback, system_fingerprint, choices', () => {
    const before = Math.floor(Date.now() / 1000);
    const completion = parsed<ChatCompletion>(JSON.stringify({ object: 'completion', id: '', created: -5, model: '', system_fingerprint: 42 }));
    normalizeCompletion(completion, 'P', 'fallback-model');
    assert.equal(completion.object, 'chat.completion');
    assert.match(completion.id, /^chatcmpl-[A-Za-z0-9_-]{16}$/);
    assert.ok(completion.created >= before && completion.created <= Math.floor(Date.now() / 1000) + 1);
    assert.equal(completion.model, 'fallback-model');
    assert.equal('system_fingerprint' in completion, false);
    assert.deepEqual(completion.choices, []);
    assert.equal(completion.provider, 'P');
    assert.equal((completion as Raw)[rawJson], undefined, 'changed: serialised anew');
    assert.deepEqual(JSON.parse(serialize(completion)), { ...completion });
  });

  test('created must be a non-negative integer; a string id and a model are kept', () => {
    for (const created of [1.5, '1700000000', null]) {
      const completion = parsed<ChatCompletion>(JSON.stringify({ ...(JSON.parse(completionText) as object), created }));
      normalizeCompletion(completion, 'P', 'fallback');
      assert.equal(typeof completion.created, 'number');
      assert.ok(Number.isInteger(completion.created) && completion.created > 1_700_000_000, String(created));
      assert.equal(completion.id, 'chatcmpl-1');
      assert.equal(completion.model, 'm-1');
      assert.equal((completion as Raw)[rawJson], undefined);
    }
  });

  test('fills choice defaults: index, message, role, content, refusal, logprobs', () => {
    const completion = parsed<ChatCompletion>(
      JSON.stringify({
        ...(JSON.parse(completionText) as object),
        choices: [{ finish_reason: 'stop' }, { message: { role: 'bot' }, finish_reason: 'length' }],
      }),
    );
    normalizeCompletion(completion, 'P', 'fallback');
    assert.deepEqual(completion.choices, [
      { index: 0, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'stop' },
      { index: 1, message: { role: 'assistant', content: null, refusal: null }, logprobs: null, finish_reason: 'length' },
    ]);
    assert.equal((completion as Raw)[rawJson], undefined);
  });

  test('each missing choice field alone drops the raw text', () => {
    const base = JSON.parse(completionText) as ChatCompletion;
    const choice = base.choices[0] as Record<string, unknown>;
    const message = choice.message as Record<string, unknown>;
    const variants: Array<[string, unknown]> = [
      ['index', { ...choice, index: undefined }],
      ['logprobs', { ...choice, logprobs: undefined }],
      ['refusal', { ...choice, message: { ...message, refusal: undefined } }],
      ['content', { ...choice, message: { ...message, content: undefined } }],
      ['message', { ...choice, message: null }],
    ];
    for (const [name, variant] of variants) {
      const completion = parsed<ChatCompletion>(JSON.stringify({ ...base, choices: [variant] }));
      normalizeCompletion(completion, 'P', 'fallback');
      assert.equal((completion as Raw)[rawJson], undefined, name);
    }
  });

  test("unknown finish reasons become 'stop' with the upstream's reason kept as native_finish_reason", () => {
    const completion = parsed<ChatCompletion>(
      JSON.stringify({
        ...(JSON.parse(completionText) as object),
        choices: [
          { index: 0, message: { role: 'assistant', content: 'a' }, finish_reason: 'end_turn' },
          { index: 1, message: { role: 'assistant', content: 'b' }, finish_reason: 'eos', native_finish_reason: 'EOS' },
          { index: 2, message: { role: 'assistant', content: 'c' }, finish_reason: null },
          { index: 3, message: { role: 'assistant', content: 'd' }, finish_reason: 'tool_calls' },
        ],
      }),
    );
    normalizeCompletion(completion, 'P', 'fallback');
    const reasons = completion.choices.map((choice) => [choice.finish_reason, choice.native_finish_reason]);
    assert.deepEqual(reasons, [
      ['stop', 'end_turn'],
      ['stop', 'EOS'],
      ['stop', undefined],
      ['tool_calls', undefined],
    ]);
    assert.equal((completion as Raw)[rawJson], undefined);
  });

  test('invalid usage is removed; valid usage is kept', () => {
    for (const usage of [null, 'x', { prompt_tokens: 1, completion_tokens: 1 }, { prompt_tokens: 1.5, completion_tokens: 1, total_tokens: 2 }]) {
      const completion = parsed<ChatCompletion>(JSON.stringify({ ...(JSON.parse(completionText) as object), usage }));
      normalizeCompletion(completion, 'P', 'fallback');
      assert.equal('usage' in completion, false, JSON.stringify(usage));
      assert.equal((completion as Raw)[rawJson], undefined);
    }
    const kept = normalizeCompletion(parsed<ChatCompletion>(completionText), 'P', 'fallback');
    assert.deepEqual(kept.usage, { prompt_tokens: 1, completion_tokens: 1, total_tokens: 2 });
  });

  test('an upstream that already says provider is overwritten and serialised anew', () => {
    const completion = parsed<ChatCompletion>(JSON.stringify({ ...(JSON.parse(completionText) as object), provider: 'Other' }));
    normalizeCompletion(completion, 'Mine', 'fallback');
    assert.equal(completion.provider, 'Mine');
    assert.equal((completion as Raw)[rawJson], undefined);
    const text = serialize(completion);
    assert.equal(text.match(/"provider"/g)?.length, 1);
    assert.equal((JSON.parse(text) as { provider: string }).provider, 'Mine');
  });

  test('a choice that is not an object is a bad response', () => {
    for (const choice of [null, 'text', 3]) {
      const completion = parsed<ChatCompletion>(JSON.stringify({ ...(JSON.parse(completionText) as object), choices: [choice] }));
      assert.throws(() => normalizeCompletion(completion, 'P', 'fallback'), isBadResponse);
    }
  });
});

describe('normalizeChunk', () => {
  test('a conforming chunk only gets provider and keeps its text', () => {
    const chunk = normalizeChunk(parsed<ChatChunk>(chunkText), 'Groq', 'fallback');
    assert.equal(chunk.provider, 'Groq');
    assert.equal((chunk as Raw)[rawJson], chunkText);
    assert.equal(serialize(chunk), `${chunkText.slice(0, -1)},"provider":"Groq"}`);
  });

  test('fixes the envelope like a completion, with the chunk object', () => {
    const chunk = parsed<ChatChunk>(JSON.stringify({ object: 'chat.completion', created: 'now', choices: 'none' }));
    normalizeChunk(chunk, 'P', 'fallback-model');
    assert.equal(chunk.object, 'chat.completion.chunk');
    assert.match(chunk.id, /^chatcmpl-/);
    assert.equal(typeof chunk.created, 'number');
    assert.equal(chunk.model, 'fallback-model');
    assert.deepEqual(chunk.choices, []);
    assert.equal((chunk as Raw)[rawJson], undefined);
  });

  test('fills index and delta; a missing finish reason becomes null, an unknown one stop', () => {
    const chunk = parsed<ChatChunk>(
      JSON.stringify({
        ...(JSON.parse(chunkText) as object),
        choices: [{}, { index: 5, delta: null, finish_reason: 'end_turn' }, { index: 6, delta: {}, finish_reason: 'length' }],
      }),
    );
    normalizeChunk(chunk, 'P', 'fallback');
    assert.deepEqual(chunk.choices, [
      { index: 0, delta: {}, finish_reason: null },
      { index: 5, delta: {}, finish_reason: 'stop', native_finish_reason: 'end_turn' },
      { index: 6, delta: {}, finish_reason: 'length' },
    ]);
    assert.equal((chunk as Raw)[rawJson], undefined);
  });

  test('logprobs are left as they are in chunks', () => {
    const chunk = normalizeChunk(parsed<ChatChunk>(chunkText), 'P', 'fallback');
    assert.equal('logprobs' in (chunk.choices[0] as object), false);
    assert.equal((chunk as Raw)[rawJson], chunkText);
  });

  test('usage: null is allowed in a chunk, an invalid object is removed', () => {
    const withNull = normalizeChunk(parsed<ChatChunk>(JSON.stringify({ ...(JSON.parse(chunkText) as object), usage: null })), 'P', 'f');
    assert.equal(withNull.usage, null);
    assert.notEqual((withNull as Raw)[rawJson], undefined);
    const invalid = normalizeChunk(parsed<ChatChunk>(JSON.stringify({ ...(JSON.parse(chunkText) as object), usage: { total_tokens: 'x' } })), 'P', 'f');
    assert.equal('usage' in invalid, false);
    assert.equal((invalid as Raw)[rawJson], undefined);
  });

  test('a null choice is a bad response', () => {
    const chunk = parsed<ChatChunk>(JSON.stringify({ ...(JSON.parse(chunkText) as object), choices: [null] }));
    assert.throws(() => normalizeChunk(chunk, 'P', 'fallback'), isBadResponse);
  });
});

describe('hasContent', () => {
  const chunkWith = (delta: Record<string, unknown> | null, finish: string | null = null): ChatChunk =>
    ({ ...(JSON.parse(chunkText) as object), choices: [{ index: 0, delta, finish_reason: finish }] }) as ChatChunk;

  test('text, tool calls, refusals, reasoning and a finish reason are content', () => {
    assert.equal(hasContent(chunkWith({ content: 'x' })), true);
    assert.equal(hasContent(chunkWith({ tool_calls: [{ index: 0 }] })), true);
    assert.equal(hasContent(chunkWith({ refusal: 'no' })), true);
    assert.equal(hasContent(chunkWith({ reasoning_content: 'hmm' })), true);
    assert.equal(hasContent(chunkWith({ reasoning: 'hmm' })), true);
    assert.equal(hasContent(chunkWith({}, 'stop')), true);
    assert.equal(hasContent(chunkWith(null, 'length')), true);
  });

  test('empty deltas, empty strings, a role alone and no choices are not', () => {
    assert.equal(hasContent(chunkWith({})), false);
    assert.equal(hasContent(chunkWith(null)), false);
    assert.equal(hasContent(chunkWith({ role: 'assistant' })), false);
    assert.equal(hasContent(chunkWith({ content: '', refusal: '', reasoning: '', reasoning_content: '' })), false);
    assert.equal(hasContent(chunkWith({ content: null, tool_calls: [] })), false);
    assert.equal(hasContent({ ...chunkWith({}), choices: [] }), false);
  });

  test('any choice with content is enough', () => {
    const chunk = chunkWith({});
    chunk.choices.push({ index: 1, delta: { content: 'y' }, finish_reason: null });
    assert.equal(hasContent(chunk), true);
  });
});
