import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { closest } from '../../src/core/closest.js';

describe('closest names', () => {
  const models = ['llama-3.1-8b-instant', 'llama-3.3-70b-versatile', 'gpt-4o', 'gpt-4o-mini', 'meta-llama/Llama-3.3-70B-Instruct', 'flux', 'flux-schnell'];

  test('a misspelling, a part written, a case difference, a vendor prefix left out', () => {
    assert.deepEqual(closest('llama-3.1-8b-instnt', models), ['llama-3.1-8b-instant']);
    assert.equal(closest('gpt-4', models)[0], 'gpt-4o');
    assert.equal(closest('GPT-4O', models)[0], 'gpt-4o');
    assert.equal(closest('llama-3.3-70b-instruct', models)[0], 'meta-llama/Llama-3.3-70B-Instruct');
    assert.equal(closest('flux-schnel', models)[0], 'flux-schnell');
  });

  test('nothing close: no suggestion, at most `limit`, no duplicates', () => {
    assert.deepEqual(closest('model-nobody-has', models), []);
    assert.deepEqual(closest('', models), []);
    assert.equal(closest('gpt', [...models, ...models]).length, 2);
    assert.deepEqual(closest('gpt-4o', ['gpt-4o', 'gpt-4o']), ['gpt-4o']);
  });

  test('bounded: a very long name is not compared, and a long list is cut', () => {
    assert.deepEqual(closest('x'.repeat(10_000), ['x'.repeat(10_000)]), []);
    const many = Array.from({ length: 5000 }, (_, index) => `model-${index}`);
    assert.ok(closest('model-4999', many).every((name) => Number(name.slice(6)) < 2000));
  });
});
