/**
 * The stream-event template of src/providers/openai-compatible/chunk-template.ts: an event that
 * differs from a parsed one only inside its content string is built without JSON.parse. The one
 * property that matters: whatever the text, `read` gives exactly what JSON.parse gives, or nothing
 * (and then the event is parsed in full). Checked on hand-picked cases and on seeded random
 * mutations of real event text.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { rawJson } from '../../src/core/normalize.js';
import type { ChatChunk } from '../../src/core/types.js';
import { ChunkTemplate } from '../../src/providers/openai-compatible/chunk-template.js';

const event = (content: string, extra = ''): string =>
  `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1732406400,"model":"m","system_fingerprint":"fp"${extra},"choices":[{"index":0,"delta":{"content":${JSON.stringify(content)}},"logprobs":null,"finish_reason":null}]}`;

const templateOf = (data: string): ChunkTemplate | undefined => ChunkTemplate.from(data, JSON.parse(data) as ChatChunk);

/** `read` must agree with JSON.parse, or decline. */
function agrees(template: ChunkTemplate, data: string): 'read' | 'declined' {
  const read = template.read(data);
  if (read === undefined) return 'declined';
  // The event's own text rides along, to be sent with `provider` spliced in.
  assert.equal((read as { [rawJson]?: string })[rawJson], data);
  const { [rawJson]: _text, ...fields } = read as ChatChunk & { [rawJson]?: string };
  assert.deepEqual(fields, JSON.parse(data), `read ${JSON.stringify(data)} differently from JSON.parse`);
  return 'read';
}

/** A small seeded generator (mulberry32): the same cases on every run. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('ChunkTemplate', () => {
  test('later events of the same form are read as JSON.parse reads them, escapes included', () => {
    const template = templateOf(event('Hello'));
    assert.ok(template);
    for (const content of ['!', '', ' How', 'line\nbreak', 'a "quote"', 'back\\slash', 'é and 😀', '\u0000\u001f', '</script>', 'tab\there']) {
      assert.equal(agrees(template, event(content)), 'read', JSON.stringify(content));
    }
    // Other escapes of the same text (as another upstream's encoder writes them).
    assert.equal(agrees(template, event('x').replace('"x"', '"\\u00e9\\/\\ud83d\\ude00"')), 'read');
    // The built chunk is a fresh object each time: nothing shared between chunks.
    const first = template.read(event('a')) as ChatChunk;
    const second = template.read(event('b')) as ChatChunk;
    assert.notEqual(first.choices, second.choices);
    assert.notEqual(first.choices[0]?.delta, second.choices[0]?.delta);
  });

  test('an event that differs outside the content string, or whose middle is not one valid string, is declined', () => {
    const template = templateOf(event('Hello')) as ChunkTemplate;
    assert.equal(agrees(template, event('x').replace('chatcmpl-1', 'chatcmpl-2')), 'declined');
    assert.equal(agrees(template, event('x', ',"obfuscation":"ab"')), 'declined');
    assert.equal(agrees(template, event('x').replace('"finish_reason":null', '"finish_reason":"stop"')), 'declined');
    // A middle that closes the string and adds a field: JSON.parse reads a different object.
    const injected = event('x').replace('"x"', '"a","role":"tool"');
    assert.equal(agrees(template, injected), 'declined');
    // An escaped closing quote, a raw control character, a bad escape.
    assert.equal(agrees(template, event('x').replace('"x"', '"x\\"')), 'declined');
    assert.equal(agrees(template, event('x').replace('"x"', '"a\nb"')), 'declined');
    assert.equal(agrees(template, event('x').replace('"x"', '"\\q"')), 'declined');
    assert.equal(template.read(''), undefined);
  });

  test('only events of the simple form make a template', () => {
    assert.ok(templateOf(event('x', ',"service_tier":"default","n":1.5,"b":true,"z":null')));
    // Pretty-printed text (spaces after colons) still qualifies.
    assert.ok(templateOf(JSON.stringify(JSON.parse(event('x')), null, 0).replaceAll('":', '": ')));
    const none = [
      event('x', ',"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}'), // a nested value
      event('x').replace('"logprobs":null', '"logprobs":{"content":[]}'),
      event('x').replace('[{"index":0', '[{"index":1,"delta":{"content":"y"}},{"index":0'), // two choices
      event('x').replace('{"content":"x"}', '{"content":null}'),
      event('x').replace('{"content":"x"}', '{"tool_calls":[]}'),
      event('x').replace('"model":"m"', '"model":"say \\"content\\":"'), // a backslash outside the content
      event('x').replace('"system_fingerprint"', '"cont\\u0065nt":"y","system_fingerprint"'), // an escaped key
      event('x').replace('"model":"m"', '"__proto__":null,"model":"m"'),
      event('x').replace('"created"', '"content":"q","created"'), // two content keys
    ];
    for (const data of none) assert.equal(templateOf(data), undefined, data);
    // A content string that JSON.parse did not read (a duplicate delta: the last one wins).
    const duplicate = event('x').replace('"delta":{"content":"x"}', '"delta":{"content":"x"},"delta":{"content":"y","role":"r"}');
    assert.equal(templateOf(duplicate), undefined);
  });

  test('random mutations of event text: read agrees with JSON.parse or declines (seeded)', () => {
    const next = random(20261130);
    const alphabet = ['"', '\\', 'u', '0', 'a', ',', ':', '}', '{', ']', '[', ' ', '\n', '\u0001', 'é', 'n', 'e', '/'];
    const template = templateOf(event('Hello')) as ChunkTemplate;
    let read = 0;
    for (let round = 0; round < 20_000; round++) {
      let data = event(String.fromCharCode(...Array.from({ length: Math.floor(next() * 6) }, () => 32 + Math.floor(next() * 90))));
      const edits = 1 + Math.floor(next() * 3);
      for (let edit = 0; edit < edits; edit++) {
        // Half of the edits inside the content string (where the fast path applies), half anywhere.
        const from = data.indexOf('"content":"') + 11;
        const to = Math.max(from, data.lastIndexOf('"},"logprobs'));
        const at = next() < 0.5 && from > 10 ? from + Math.floor(next() * (to - from + 1)) : Math.floor(next() * (data.length + 1));
        const choice = next();
        const piece = alphabet[Math.floor(next() * alphabet.length)] as string;
        if (choice < 0.4) data = data.slice(0, at) + piece + data.slice(at);
        else if (choice < 0.7) data = data.slice(0, at) + data.slice(at + 1);
        else data = data.slice(0, at) + piece + data.slice(at + 1);
      }
      let valid = true;
      try {
        JSON.parse(data);
      } catch {
        valid = false;
      }
      if (!valid) assert.equal(template.read(data), undefined, `read invalid JSON ${JSON.stringify(data)}`);
      else if (agrees(template, data) === 'read') read++;
    }
    // The mutations that stay inside the content string are read (the test exercises the fast path).
    assert.ok(read > 1000, `only ${read} mutated events were read`);
  });
});
