/** The embedded model's provider in process (test/local-provider.test.ts, test/local-hardening.test.ts). */
import assert from 'node:assert/strict';
import os from 'node:os';
import { defaultLimits } from '../../src/core/http.js';
import type { ChatResult } from '../../src/core/provider.js';
import type { ChatChunk, ChatRequest } from '../../src/core/types.js';
import { createLocalProvider, type LocalProvider } from '../../src/providers/local/local-provider.js';

/** A provider for `model` (a file or an hf: URI): one thread, a 512-token context, two sequences unless told. */
export function openLocal(model: string, extra: { cacheDir?: string; hfEndpoint?: string; parallel?: number; log?: (m: string) => void } = {}): LocalProvider {
  return createLocalProvider({ model, cacheDir: extra.cacheDir ?? os.tmpdir(), threads: 1, contextSize: 512, parallel: extra.parallel ?? 2, ...extra });
}

/** A chat call: "Once upon a time" at temperature 0 unless `fields` say otherwise. */
export function ask(provider: LocalProvider, fields: Partial<ChatRequest> = {}, signal = new AbortController().signal): Promise<ChatResult> {
  const request: ChatRequest = { model: 'whatever-the-client-says', messages: [{ role: 'user', content: 'Once upon a time' }], temperature: 0, ...fields };
  return provider.chat({ request, apiKey: undefined, signal, limits: defaultLimits });
}

export function streamOf(result: ChatResult): AsyncIterable<ChatChunk> {
  if (result.type !== 'stream') assert.fail('the local provider always streams');
  return result.chunks;
}
