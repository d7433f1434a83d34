/**
 * The light aborts of src/core/abort.ts: a request's `ClientAbort` and an attempt's `LinkedAbort`
 * (linked to it, with a real AbortSignal made only on first use), as failover and the providers
 * rely on them.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ClientAbort, linkAbort } from '../../src/core/abort.js';
import { UpstreamError } from '../../src/core/errors.js';

const asUpstream = (reason: unknown): UpstreamError => (reason instanceof UpstreamError ? reason : new UpstreamError('aborted', 'the client went away'));

describe('ClientAbort and LinkedAbort', () => {
  test('a client abort runs each listener once, with an AbortError by default; later aborts change nothing', () => {
    const client = new ClientAbort();
    let calls = 0;
    const listener = (): void => void calls++;
    client.addEventListener('abort', listener);
    client.abort();
    client.abort(new Error('again'));
    assert.equal(calls, 1);
    assert.equal(client.aborted, true);
    assert.ok(client.reason instanceof DOMException);
    assert.equal((client.reason as DOMException).name, 'AbortError');
  });

  test('an attempt aborts with the parent, its reason mapped; after unlink it no longer follows', () => {
    const client = new ClientAbort();
    const attempt = linkAbort(client, asUpstream);
    let heard = 0;
    attempt.addEventListener('abort', () => void heard++);
    client.abort();
    assert.equal(attempt.aborted, true);
    assert.ok(attempt.reason instanceof UpstreamError);
    assert.equal((attempt.reason as UpstreamError).kind, 'aborted');
    assert.equal(heard, 1);

    const other = new ClientAbort();
    const unlinked = linkAbort(other, asUpstream);
    unlinked.unlink();
    other.abort();
    assert.equal(unlinked.aborted, false);
  });

  test('an attempt made under a parent that already aborted is aborted from the start', () => {
    const client = new ClientAbort();
    client.abort(new UpstreamError('timeout', 'deadline'));
    const attempt = linkAbort(client, asUpstream);
    assert.equal(attempt.aborted, true);
    assert.equal((attempt.reason as UpstreamError).kind, 'timeout');
  });

  test('an attempt aborted on its own (a deadline) leaves the parent alone', () => {
    const client = new ClientAbort();
    const attempt = linkAbort(client, asUpstream);
    const deadline = new UpstreamError('timeout', 'no content in time');
    attempt.abort(deadline);
    assert.equal(attempt.reason, deadline);
    assert.equal(client.aborted, false);
  });

  test('its AbortSignal, read before or after the abort, is one signal that carries the same reason', () => {
    const client = new ClientAbort();
    const early = linkAbort(client, asUpstream);
    const signal = early.signal;
    assert.equal(early.signal, signal, 'made once');
    assert.equal(signal.aborted, false);
    let heard = 0;
    signal.addEventListener('abort', () => void heard++);
    const deadline = new UpstreamError('timeout', 'deadline');
    early.abort(deadline);
    assert.equal(signal.aborted, true);
    assert.equal(signal.reason, deadline);
    assert.equal(heard, 1);

    const late = linkAbort(client, asUpstream);
    late.abort(deadline);
    assert.equal(late.signal.aborted, true);
    assert.equal(late.signal.reason, deadline);
  });

  test('a removed listener is not called', () => {
    const client = new ClientAbort();
    const attempt = linkAbort(client, asUpstream);
    let calls = 0;
    const listener = (): void => void calls++;
    attempt.addEventListener('abort', listener);
    attempt.removeEventListener('abort', listener);
    client.abort();
    assert.equal(calls, 0);
    assert.equal(attempt.aborted, true);
  });
});
