import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Ajv2020 } from 'ajv/dist/2020.js';
import formatsModule, { type FormatsPlugin } from 'ajv-formats';
import { repoRoot, startGateway, userMessage, type Gateway } from './support/gateway.js';

/**
 * The official OpenAPI 3.1 schema (spec.openapis.org/oas/3.1/schema/2022-10-07), vendored: tests run
 * offline. Its Schema Objects are `{"$dynamicRef": "#meta"}`, which resolves to its own
 * `$dynamicAnchor: meta` (`$defs/schema`) unless an extending dialect schema overrides it; ajv resolves
 * that `$dynamicRef` wrongly (to the document root), so it is read as the plain `$ref` it means here.
 */
const openApiSchema = JSON.parse(
  readFileSync(path.join(repoRoot, 'test/fixtures/openapi-3.1-schema.json'), 'utf8').replaceAll('"$dynamicRef": "#meta"', '"$ref": "#/$defs/schema"'),
) as Record<string, unknown>;

type Json = Record<string, unknown>;

function newAjv(): Ajv2020 {
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  // ajv-formats is CommonJS: the plugin is the module itself or its `default`.
  const plugin = (typeof formatsModule === 'function' ? formatsModule : (formatsModule as { default: FormatsPlugin }).default) as FormatsPlugin;
  plugin(ajv);
  ajv.addFormat('media-range', true); // the OpenAPI schema's own format for content types: not checked
  return ajv;
}

describe('/openapi.json and /docs', () => {
  let gateway: Gateway;
  let document: Json;
  const ajv = newAjv();

  before(async () => {
    gateway = await startGateway();
    const response = await gateway.get('/openapi.json');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^application\/json/);
    document = (await response.json()) as Json;
  });
  after(() => gateway.close());

  /** A component schema of the document, compiled (its own `$ref`s never leave it). */
  const bodySchema = (name: string) => ajv.compile((document.components as { schemas: Record<string, Json> }).schemas[name] as Json);

  test('is a valid OpenAPI 3.1 document, with servers from the request', () => {
    const validate = ajv.compile(openApiSchema);
    assert.ok(validate(document), JSON.stringify(validate.errors, null, 2));
    assert.equal(document.openapi, '3.1.0');
    assert.deepEqual(
      (document.servers as Array<{ url: string }>).map((server) => server.url),
      [gateway.url],
    );
    const schemes = (document.components as { securitySchemes: Json }).securitySchemes;
    assert.deepEqual(Object.keys(schemes).sort(), ['g4fApiKey', 'gatewayApiKey', 'gatewayBearer']);
  });

  test('documents every route the gateway lists, with its method', async () => {
    const index = (await (await gateway.get('/')).json()) as { routes: string[] };
    const paths = document.paths as Record<string, Json>;
    const routes = [...index.routes, 'GET /', 'GET /v1', 'GET /health'];
    assert.ok(routes.length > 20);
    for (const route of routes) {
      const [method, routePath] = route.split(' ') as [string, string];
      assert.ok(paths[routePath]?.[method.toLowerCase()] !== undefined, `${route} is not in the document`);
    }
    const chat = paths['/v1/chat/completions']?.post as Json;
    assert.deepEqual(Object.keys(chat.responses as Json).sort(), ['200', '4XX', '5XX']);
    assert.deepEqual(chat.requestBody, { required: true, content: { 'application/json': { schema: { $ref: '#/components/schemas/ChatCompletionRequest' } } } });
    // Open routes say so; API routes may carry the gateway key.
    assert.deepEqual((paths['/health']?.get as Json).security, []);
    assert.ok(((chat.security as Json[]) ?? []).some((requirement) => 'gatewayBearer' in requirement));
  });

  test('the request-body schemas accept known-good requests and document `provider`', () => {
    const good: Array<[string, unknown]> = [
      ['ChatCompletionRequest', { model: 'gpt-4o', messages: userMessage }],
      [
        'ChatCompletionRequest',
        {
          messages: [
            { role: 'system', content: 'be brief' },
            { role: 'user', content: [{ type: 'text', text: 'hi' }] },
            { role: 'assistant', content: null, tool_calls: [{ id: 'c', type: 'function', function: { name: 'f', arguments: '{}' } }] },
            { role: 'tool', tool_call_id: 'c', content: '42' },
          ],
          provider: { order: ['Groq'], allow_fallbacks: false },
          api_key: { Groq: 'gsk_x' },
          stream: true,
          stream_options: { include_usage: true },
          temperature: 0.5,
          stop: ['\n'],
          tools: [{ type: 'function', function: { name: 'f', parameters: { type: 'object' } } }],
        },
      ],
      ['ImageGenerationRequest', { prompt: 'a lighthouse', n: 2, size: '512x512', response_format: 'b64_json', provider: 'HuggingSpace Pollinations' }],
      ['ImageGenerationRequest', { prompt: 'a lighthouse', width: '512', aspect_ratio: '16:9', seed: 5 }],
      ['MessagesRequest', { model: 'claude', max_tokens: 64, messages: userMessage }],
      ['CountTokensRequest', { messages: userMessage }],
      ['ResponsesRequest', { model: 'gpt-4o', input: 'hi', previous_response_id: 'resp_1' }],
      [
        'MessagesRequest',
        {
          max_tokens: 64,
          system: [{ type: 'text', text: 'be brief' }],
          messages: [
            {
              role: 'user',
              content: [
                { type: 'text', text: 'hi' },
                { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } },
              ],
            },
            {
              role: 'assistant',
              content: [
                { type: 'thinking', thinking: '…' },
                { type: 'tool_use', id: 't1', name: 'f', input: { a: 1 } },
              ],
            },
            { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'text', text: '42' }] }] },
          ],
          tools: [{ name: 'f', description: 'd', input_schema: { type: 'object' } }],
          tool_choice: { type: 'any', disable_parallel_tool_use: true },
          stop_sequences: ['\n'],
          metadata: { user_id: 'u' },
          provider: 'Groq',
        },
      ],
      [
        'ResponsesRequest',
        {
          instructions: 'be brief',
          input: [
            {
              role: 'user',
              content: [
                { type: 'input_text', text: 'hi' },
                { type: 'input_image', image_url: 'https://example.com/a.png', detail: 'high' },
              ],
            },
            { type: 'message', role: 'assistant', content: [{ type: 'output_text', text: 'calling' }] },
            { type: 'function_call', call_id: 'c', name: 'f', arguments: '{}' },
            { type: 'function_call_output', call_id: 'c', output: '42' },
          ],
          tools: [{ type: 'function', name: 'f', parameters: { type: 'object' }, strict: true }],
          tool_choice: { type: 'function', name: 'f' },
          text: { format: { type: 'json_schema', name: 'answer', schema: { type: 'object' } } },
          max_output_tokens: 100,
          background: false,
          api_key: { Groq: 'gsk_x' },
        },
      ],
    ];
    for (const [name, body] of good) {
      const validate = bodySchema(name);
      assert.ok(validate(body), `${name}: ${JSON.stringify(validate.errors)}`);
    }
    const chat = (document.components as { schemas: Record<string, { properties: Record<string, Json> }> }).schemas.ChatCompletionRequest;
    assert.match(String(chat?.properties.provider?.description), /Which providers answer/);
  });

  test("the request-body schemas reject what the gateway's validation rejects: one source", async () => {
    const cases: Array<[string, string, Json]> = [
      ['ChatCompletionRequest', '/v1/chat/completions', {}],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: [] }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: [{ role: 'wizard', content: 'x' }] }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: [{ role: 'user' }] }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: [{ role: 'user', content: [{ text: 'x' }] }] }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: userMessage, temperature: 9 }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: userMessage, max_tokens: 1.5 }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: userMessage, stop: [1] }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: userMessage, stream_options: [] }],
      ['ChatCompletionRequest', '/v1/chat/completions', { messages: userMessage, provider: 12 }],
      ['ImageGenerationRequest', '/v1/images/generate', {}],
      ['ImageGenerationRequest', '/v1/images/generate', { prompt: '  ' }],
      ['ImageGenerationRequest', '/v1/images/generate', { prompt: 'x', n: 11 }],
      ['ImageGenerationRequest', '/v1/images/generate', { prompt: 'x', size: 'big' }],
      ['ImageGenerationRequest', '/v1/images/generate', { prompt: 'x', response_format: 'png' }],
      ['ImageGenerationRequest', '/v1/images/generate', { prompt: 'x', seed: -1 }],
      ['MessagesRequest', '/v1/messages', { messages: userMessage }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 0, messages: userMessage }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: [] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: [{ role: 'tool', content: 'x' }] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'document' }] }] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: [{ role: 'user', content: [{ type: 'image', source: { type: 'file' } }] }] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: userMessage, system: [5] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: userMessage, temperature: 3 }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: userMessage, stop_sequences: [1] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: userMessage, tools: [{ type: 'web_search_20250305', name: 'web_search' }] }],
      ['MessagesRequest', '/v1/messages', { max_tokens: 5, messages: userMessage, tool_choice: { type: 'sometimes' } }],
      ['CountTokensRequest', '/v1/messages/count_tokens', {}],
      ['CountTokensRequest', '/v1/messages/count_tokens', { messages: [{ role: 'user' }] }],
      ['ResponsesRequest', '/v1/responses', {}],
      ['ResponsesRequest', '/v1/responses', { input: 42 }],
      ['ResponsesRequest', '/v1/responses', { input: [] }],
      ['ResponsesRequest', '/v1/responses', { input: [{ type: 'reasoning' }] }],
      ['ResponsesRequest', '/v1/responses', { input: [{ role: 'wizard', content: 'x' }] }],
      ['ResponsesRequest', '/v1/responses', { input: [{ role: 'user', content: [{ type: 'input_image' }] }] }],
      ['ResponsesRequest', '/v1/responses', { input: [{ type: 'function_call', call_id: 'c', name: 'f' }] }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', tools: [{ type: 'web_search' }] }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', max_output_tokens: 0 }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', text: { format: { type: 'xml' } } }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', tool_choice: { type: 'function' } }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', temperature: 3 }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', background: true }],
      ['ResponsesRequest', '/v1/responses', { input: 'hi', conversation: 'conv_1' }],
    ];
    for (const [name, route, body] of cases) {
      const response = await gateway.post(route, body);
      assert.equal(response.status, 400, `${route} ${JSON.stringify(body)}`);
      await response.body?.cancel();
      assert.equal(bodySchema(name)(body), false, `the document's ${name} accepts ${JSON.stringify(body)}`);
    }
  });

  test('is built once: the same bytes twice, servers aside', async () => {
    const again = (await (await gateway.get('/openapi.json')).json()) as Json;
    assert.deepEqual(again, document);
    const proxied = await fetch(`${gateway.url}/openapi.json`, { headers: { 'x-forwarded-host': 'api.example', 'x-forwarded-proto': 'https' } });
    assert.deepEqual(((await proxied.json()) as { servers: Array<{ url: string }> }).servers[0]?.url, 'https://api.example');
  });

  test('/docs is Swagger UI whose every script and stylesheet is served here, under a strict policy', async () => {
    const response = await gateway.get('/docs');
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/html/);
    assert.equal(response.headers.get('x-content-type-options'), 'nosniff');
    const policy = response.headers.get('content-security-policy') ?? '';
    assert.match(policy, /script-src 'self'(;|$)/, 'no inline or remote script');
    assert.ok(response.headers.get('x-request-id'), "the context's headers are on every answer");
    const html = await response.text();
    assert.doesNotMatch(html, /<script>|<script(?![^>]*\bsrc=)[^>]*>/, 'no inline script');
    const links = [...html.matchAll(/<(?:script[^>]*\ssrc|link[^>]*\shref)="([^"]+)"/g)].map((match) => match[1] as string);
    assert.ok(links.includes('/docs/swagger-ui-bundle.js') && links.includes('/docs/swagger-ui.css'), links.join(' '));
    const types: Record<string, RegExp> = { '.js': /^text\/javascript/, '.css': /^text\/css/, '.png': /^image\/png/ };
    for (const link of links) {
      assert.ok(link.startsWith('/'), `${link} is not local`);
      const asset = await gateway.get(link);
      assert.equal(asset.status, 200, link);
      assert.match(asset.headers.get('content-type') ?? '', types[path.extname(link)] ?? /^$/, link);
      assert.equal(asset.headers.get('x-content-type-options'), 'nosniff');
      assert.ok((await asset.arrayBuffer()).byteLength > 0, link);
    }
    const initializer = await (await gateway.get('/docs/docs-init.js')).text();
    assert.match(initializer, /url: '\/openapi\.json'/);
  });

  test('HEAD /docs answers headers only; unknown and traversing asset names are 404', async () => {
    const head = await fetch(`${gateway.url}/docs`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
    assert.equal((await head.arrayBuffer()).byteLength, 0);
    const headDoc = await fetch(`${gateway.url}/openapi.json`, { method: 'HEAD' });
    assert.equal(headDoc.status, 200);
    assert.equal((await headDoc.arrayBuffer()).byteLength, 0);
    for (const name of ['index.html', '..%2Fpackage.json', '%2e%2e/%2e%2e/package.json', 'swagger-ui-bundle.js.map', 'nothing.js']) {
      const response = await gateway.get(`/docs/${name}`);
      assert.equal(response.status, 404, name);
      assert.match(response.headers.get('content-type') ?? '', /application\/json/);
    }
  });
});

describe('/openapi.json with a gateway key', () => {
  let gateway: Gateway;
  before(async () => {
    gateway = await startGateway({ env: { INTERFERENCE_API_KEY: 'docs-test-key' } });
  });
  after(() => gateway.close());

  test('the document and the docs are open; the API still needs the key', async () => {
    assert.equal((await gateway.get('/openapi.json')).status, 200);
    assert.equal((await gateway.get('/docs')).status, 200);
    assert.equal((await gateway.get('/v1/models')).status, 401);
  });
});
