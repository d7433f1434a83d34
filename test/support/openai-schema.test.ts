import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { OPENAI_SPEC_PATH, assertOpenAIShape, openAIComponentSchemas, validateAgainstOpenAI, type SchemaName } from './openai-schema.js';

// Recorded bodies from OpenAI's SDK test recordings.
const CHAT_COMPLETION = {
  id: 'chatcmpl-ABfvaueLEMLNYbT8YzpJxsmiQ6HSY',
  object: 'chat.completion',
  created: 1727346142,
  model: 'gpt-4o-2024-08-06',
  choices: [
    {
      index: 0,
      message: { role: 'assistant', content: "I'm unable to provide real-time weather updates.", refusal: null },
      logprobs: null,
      finish_reason: 'stop',
    },
  ],
  usage: { prompt_tokens: 14, completion_tokens: 37, total_tokens: 51, completion_tokens_details: { reasoning_tokens: 0 } },
  system_fingerprint: 'fp_b40fb1c6fb',
} as const;

const CHUNK = {
  id: 'chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c',
  object: 'chat.completion.chunk',
  created: 1727346173,
  model: 'gpt-4o-2024-08-06',
  system_fingerprint: 'fp_5050236cbd',
  choices: [{ index: 0, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }],
} as const;

const USAGE_CHUNK = {
  id: 'chatcmpl-ABfw5EzoqmfXjnnsXY7Yd8OC6tb3c',
  object: 'chat.completion.chunk',
  created: 1727346173,
  model: 'gpt-4o-2024-08-06',
  system_fingerprint: 'fp_5050236cbd',
  choices: [],
  usage: { prompt_tokens: 9, completion_tokens: 2, total_tokens: 11, completion_tokens_details: { reasoning_tokens: 0 } },
} as const;

const ERROR = {
  error: { message: 'Incorrect API key provided', type: 'invalid_request_error', param: null, code: 'invalid_api_key' },
} as const;

const MODELS = {
  object: 'list',
  data: [{ id: 'gpt-4o-mini', object: 'model', created: 1686935002, owned_by: 'system' }],
} as const;

const IMAGES = {
  created: 1713833628,
  data: [{ url: 'https://example.com/img.png', revised_prompt: 'A cute otter' }],
} as const;

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

/** Deep mutable copy of a recorded body, for building broken variants. */
function copy(value: unknown): JsonObject {
  const cloned: unknown = structuredClone(value);
  assert.ok(typeof cloned === 'object' && cloned !== null && !Array.isArray(cloned));
  return cloned as JsonObject;
}

function obj(value: Json | undefined): JsonObject {
  assert.ok(typeof value === 'object' && value !== null && !Array.isArray(value), 'expected an object');
  return value;
}

function arr(value: Json | undefined): Json[] {
  assert.ok(Array.isArray(value), 'expected an array');
  return value;
}

function firstChoice(body: JsonObject): JsonObject {
  return obj(arr(body['choices'])[0]);
}

function assertValid(schema: SchemaName, value: unknown): void {
  assert.deepEqual(validateAgainstOpenAI(schema, value), []);
}

/** Invalid, and at least one error message matches every pattern. */
function assertInvalid(schema: SchemaName, value: unknown, ...patterns: RegExp[]): string[] {
  const errors = validateAgainstOpenAI(schema, value);
  assert.ok(errors.length > 0, `expected ${schema} to reject ${JSON.stringify(value)}`);
  for (const pattern of patterns) {
    assert.ok(
      errors.some((e) => pattern.test(e)),
      `no error matches ${pattern}; errors:\n${errors.join('\n')}`,
    );
  }
  return errors;
}

describe('OpenAI OpenAPI schema validator', () => {
  it('finds the shared spec outside the repo', () => {
    assert.ok(existsSync(OPENAI_SPEC_PATH), OPENAI_SPEC_PATH);
    assert.match(OPENAI_SPEC_PATH, /[\\/]shared[\\/]specs[\\/]openai-openapi\.yaml$/);
  });

  describe('recorded OpenAI bodies are valid', () => {
    it('chat.completion', () => assertValid('CreateChatCompletionResponse', CHAT_COMPLETION));
    it('chat.completion.chunk', () => assertValid('CreateChatCompletionStreamResponse', CHUNK));
    it('usage chunk (empty choices)', () => assertValid('CreateChatCompletionStreamResponse', USAGE_CHUNK));
    it('error', () => assertValid('ErrorResponse', ERROR));
    it('models list', () => assertValid('ListModelsResponse', MODELS));
    it('single model', () => assertValid('Model', MODELS.data[0]));
    it('images', () => assertValid('ImagesResponse', IMAGES));
  });

  describe('chat.completion variants', () => {
    it('rejects system_fingerprint: null', () => {
      const body = copy(CHAT_COMPLETION);
      body['system_fingerprint'] = null;
      assertInvalid('CreateChatCompletionResponse', body, /^\/system_fingerprint must be string$/);
    });

    it('rejects a body without choices', () => {
      const body = copy(CHAT_COMPLETION);
      delete body['choices'];
      assertInvalid('CreateChatCompletionResponse', body, /^\(root\) must have required property 'choices'$/);
    });

    it('rejects finish_reason "done"', () => {
      const body = copy(CHAT_COMPLETION);
      firstChoice(body)['finish_reason'] = 'done';
      assertInvalid('CreateChatCompletionResponse', body, /^\/choices\/0\/finish_reason must be equal to one of the allowed values: "stop", "length"/);
    });

    it('rejects object "chat.completion.chunk"', () => {
      const body = copy(CHAT_COMPLETION);
      body['object'] = 'chat.completion.chunk';
      assertInvalid('CreateChatCompletionResponse', body, /^\/object must be equal to one of the allowed values: "chat\.completion"$/);
    });

    it('rejects a non-integer created (custom unixtime format / integer type)', () => {
      const body = copy(CHAT_COMPLETION);
      body['created'] = '2024-09-26';
      assertInvalid('CreateChatCompletionResponse', body, /^\/created must be integer$/);
      body['created'] = -1;
      assertInvalid('CreateChatCompletionResponse', body, /^\/created must match format "unixtime"$/);
    });

    it('rejects a message without refusal (role, content, refusal are required)', () => {
      const body = copy(CHAT_COMPLETION);
      delete obj(firstChoice(body)['message'])['refusal'];
      assertInvalid('CreateChatCompletionResponse', body, /^\/choices\/0\/message must have required property 'refusal'$/);
    });

    it('accepts an extra top-level provider field', () => {
      assertValid('CreateChatCompletionResponse', { ...CHAT_COMPLETION, provider: 'Groq' });
    });

    it('accepts a body without system_fingerprint (optional)', () => {
      const body = copy(CHAT_COMPLETION);
      delete body['system_fingerprint'];
      assertValid('CreateChatCompletionResponse', body);
    });

    it('accepts a body without usage (optional)', () => {
      const body = copy(CHAT_COMPLETION);
      delete body['usage'];
      assertValid('CreateChatCompletionResponse', body);
    });

    it('accepts tool calls (oneOf with the OpenAPI discriminator stripped)', () => {
      const body = copy(CHAT_COMPLETION);
      const choice = firstChoice(body);
      choice['finish_reason'] = 'tool_calls';
      choice['message'] = {
        role: 'assistant',
        content: null,
        refusal: null,
        tool_calls: [{ id: 'call_1', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }],
      };
      assertValid('CreateChatCompletionResponse', body);
      obj(arr(obj(choice['message'])['tool_calls'])[0])['type'] = 'bogus';
      assertInvalid('CreateChatCompletionResponse', body, /^\/choices\/0\/message\/tool_calls\/0\/type /);
    });
  });

  describe('chat.completion.chunk variants', () => {
    it('rejects a choice without delta', () => {
      const body = copy(CHUNK);
      delete firstChoice(body)['delta'];
      assertInvalid('CreateChatCompletionStreamResponse', body, /^\/choices\/0 must have required property 'delta'$/);
    });

    it('accepts usage: null (spec marks it nullable)', () => {
      assertValid('CreateChatCompletionStreamResponse', { ...CHUNK, usage: null });
    });

    it('accepts finish_reason "stop" and rejects "done" (nullable enum)', () => {
      const body = copy(CHUNK);
      firstChoice(body)['finish_reason'] = 'stop';
      assertValid('CreateChatCompletionStreamResponse', body);
      firstChoice(body)['finish_reason'] = 'done';
      assertInvalid('CreateChatCompletionStreamResponse', body, /^\/choices\/0\/finish_reason must be equal to one of the allowed values/);
    });

    it('rejects object "chat.completion"', () => {
      assertInvalid(
        'CreateChatCompletionStreamResponse',
        { ...CHUNK, object: 'chat.completion' },
        /^\/object must be equal to one of the allowed values: "chat\.completion\.chunk"$/,
      );
    });

    it('accepts extra provider field and a missing system_fingerprint', () => {
      const body = copy(CHUNK);
      delete body['system_fingerprint'];
      body['provider'] = 'Groq';
      assertValid('CreateChatCompletionStreamResponse', body);
    });
  });

  describe('error, models, images variants', () => {
    it('rejects an error body missing param and code keys', () => {
      const errors = assertInvalid(
        'ErrorResponse',
        { error: { message: 'Incorrect API key provided', type: 'invalid_request_error' } },
        /^\/error must have required property 'param'$/,
        /^\/error must have required property 'code'$/,
      );
      assert.equal(errors.length, 2);
    });

    it('rejects a model without owned_by', () => {
      const { owned_by: _ownedBy, ...model } = MODELS.data[0];
      assertInvalid('Model', model, /^\(root\) must have required property 'owned_by'$/);
      assertInvalid('ListModelsResponse', { ...MODELS, data: [model] }, /^\/data\/0 must have required property 'owned_by'$/);
    });

    it('rejects an images response without created', () => {
      const { created: _created, ...images } = IMAGES;
      assertInvalid('ImagesResponse', images, /^\(root\) must have required property 'created'$/);
    });

    it('accepts an extra provider field on every schema', () => {
      assertValid('ErrorResponse', { ...ERROR, provider: 'Groq' });
      assertValid('ErrorResponse', { error: { ...ERROR.error, provider: 'Groq' } });
      assertValid('ListModelsResponse', { ...MODELS, provider: 'Groq' });
      assertValid('Model', { ...MODELS.data[0], provider: 'Groq' });
      assertValid('ImagesResponse', { ...IMAGES, provider: 'Groq' });
    });
  });

  describe('assertOpenAIShape', () => {
    it('passes silently on a valid body', () => {
      assertOpenAIShape('CreateChatCompletionResponse', CHAT_COMPLETION);
    });

    it('throws an AssertionError listing the errors and the value', () => {
      const body = copy(CHAT_COMPLETION);
      delete body['choices'];
      assert.throws(
        () => assertOpenAIShape('CreateChatCompletionResponse', body),
        (error: unknown) => {
          assert.ok(error instanceof assert.AssertionError);
          assert.match(error.message, /CreateChatCompletionResponse/);
          assert.match(error.message, /must have required property 'choices'/);
          assert.match(error.message, /chatcmpl-ABfvaueLEMLNYbT8YzpJxsmiQ6HSY/);
          return true;
        },
      );
    });
  });

  describe('spec facts the gateway relies on', () => {
    const REQUIRED: Record<SchemaName, string[]> = {
      CreateChatCompletionResponse: ['choices', 'created', 'id', 'model', 'object'],
      CreateChatCompletionStreamResponse: ['choices', 'created', 'id', 'model', 'object'],
      ErrorResponse: ['error'],
      ListModelsResponse: ['object', 'data'],
      Model: ['id', 'object', 'created', 'owned_by'],
      ImagesResponse: ['created'],
    };
    const schemas = openAIComponentSchemas();

    for (const [name, required] of Object.entries(REQUIRED)) {
      it(`${name} requires exactly ${required.join(', ')}`, () => {
        const schema = schemas[name];
        assert.ok(typeof schema === 'object' && schema !== null && 'required' in schema);
        assert.deepEqual(schema.required, required);
      });
    }

    it('no schema reachable from the six forbids additional properties', () => {
      const closed: string[] = [];
      const seen = new Set<string>();
      const todo: string[] = Object.keys(REQUIRED);
      const walk = (node: unknown, where: string): void => {
        if (Array.isArray(node)) {
          node.forEach((item, i) => walk(item, `${where}/${i}`));
          return;
        }
        if (typeof node !== 'object' || node === null) return;
        for (const [key, value] of Object.entries(node)) {
          if (key === '$ref' && typeof value === 'string') todo.push(value.replace('#/components/schemas/', ''));
          if ((key === 'additionalProperties' || key === 'unevaluatedProperties') && value === false) closed.push(where);
          walk(value, `${where}/${key}`);
        }
      };
      for (let name = todo.pop(); name !== undefined; name = todo.pop()) {
        if (seen.has(name)) continue;
        seen.add(name);
        assert.ok(name in schemas, `dangling $ref ${name}`);
        walk(schemas[name], name);
      }
      assert.ok(seen.size > 6);
      assert.deepEqual(closed, []);
    });
  });
});
