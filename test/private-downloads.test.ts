/**
 * Files named by an upstream's answer (a Space's output) or by a client's message (an image URL
 * the gateway inlines for Anthropic and Gemini) are fetched only from public addresses: never from
 * this machine, its network or the cloud metadata address (SSRF), unless the operator allows it
 * (INTERFERENCE_PRIVATE_DOWNLOADS=on). The provider's own configured origin is always allowed.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { isInternalAddress, publicLookup } from '../src/core/public-address.js';
import { startAnthropicFake, type AnthropicFake } from './fakes/anthropic-fake.js';
import { startCanarySink, startEvilGradio, type CanarySink, type EvilGradio } from './fakes/evil-upstream.js';
import { startGateway, type Gateway } from './support/gateway.js';

describe('internal addresses', () => {
  test('this machine, private and link-local networks, CGNAT, multicast, unspecified; IPv4-mapped IPv6 too', () => {
    for (const address of [
      '127.0.0.1',
      '127.8.9.10',
      '10.1.2.3',
      '172.16.0.1',
      '172.31.255.255',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      'ff02::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      'not-an-ip',
    ]) {
      assert.equal(isInternalAddress(address), true, address);
    }
    for (const address of ['8.8.8.8', '1.1.1.1', '172.32.0.1', '100.128.0.1', '2606:4700:4700::1111', '::ffff:8.8.8.8']) {
      assert.equal(isInternalAddress(address), false, address);
    }
  });

  test('a name is checked where it resolves: localhost is refused by the lookup itself', async () => {
    const error = await new Promise<Error | null>((resolve) => publicLookup('localhost', { all: true }, (failure) => resolve(failure)));
    assert.match(String(error?.message), /refused to fetch a file from localhost \((127\.0\.0\.1|::1)\)/);
  });
});

describe('downloads refuse internal addresses', () => {
  let sink: CanarySink;
  let toSink: EvilGradio;
  let toMetadata: EvilGradio;
  let anthropic: AnthropicFake;
  let gateway: Gateway;

  before(async () => {
    sink = await startCanarySink();
    toSink = await startEvilGradio({ space: 'black-forest-labs/FLUX.1-schnell', fileUrl: `${sink.url}/file.png` });
    toMetadata = await startEvilGradio({ space: 'black-forest-labs/FLUX.1-schnell', fileUrl: 'http://169.254.169.254/latest/meta-data/file.png' });
    anthropic = await startAnthropicFake({ apiKey: 'sk-ant-test' });
    gateway = await startGateway({
      env: { INTERFERENCE_RETRIES: '0', HUGGINGSPACE_BASE_URL: toSink.url, ANTHROPIC_BASE_URL: anthropic.url, ANTHROPIC_API_KEY: 'sk-ant-test' },
    });
  });
  after(async () => {
    await gateway.close();
    await Promise.all([sink.stop(), toSink.stop(), toMetadata.stop(), anthropic.close()]);
  });

  const generate = (target: Gateway) =>
    target.post('/v1/images/generate', { prompt: 'x', model: 'flux-schnell', provider: 'HuggingSpace', response_format: 'b64_json' });

  test("a Space's output on another address of this machine is refused, and nothing is fetched there", async () => {
    const before = sink.requests.length;
    const response = await generate(gateway);
    assert.equal(response.status, 502);
    const body = (await response.json()) as { error: { message: string } };
    assert.match(body.error.message, /refused to fetch a file from 127\.0\.0\.1: an address on this machine or its network/);
    assert.equal(sink.requests.length, before);
  });

  test('the cloud metadata address is refused before any connection', async () => {
    const metadata = await startGateway({ env: { INTERFERENCE_RETRIES: '0', HUGGINGSPACE_BASE_URL: toMetadata.url } });
    try {
      const response = await generate(metadata);
      assert.equal(response.status, 502);
      assert.match(((await response.json()) as { error: { message: string } }).error.message, /refused to fetch a file from 169\.254\.169\.254/);
    } finally {
      await metadata.close();
    }
  });

  test('an image URL in a client message pointing inside the network is refused, its content never read', async () => {
    const before = sink.requests.length;
    const response = await gateway.post('/v1/chat/completions', {
      provider: 'Anthropic',
      messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `${sink.url}/private.png` } }] }],
    });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: { message: string } }).error.message, /refused to fetch a file from 127\.0\.0\.1/);
    assert.equal(sink.requests.length, before);
    assert.equal(anthropic.requests.length, 0, 'nothing was sent to the provider');
  });

  test('INTERFERENCE_PRIVATE_DOWNLOADS=on allows them (an image host on the local network)', async () => {
    const allowed = await startGateway({ env: { INTERFERENCE_RETRIES: '0', HUGGINGSPACE_BASE_URL: toSink.url, INTERFERENCE_PRIVATE_DOWNLOADS: 'on' } });
    try {
      const before = sink.requests.length;
      const response = await generate(allowed);
      assert.equal(response.status, 200);
      assert.equal(sink.requests.length, before + 1);
    } finally {
      await allowed.close();
    }
  });
});
