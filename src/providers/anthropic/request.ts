import { UpstreamError } from '../../core/errors.js';
import { chatParamsWithout } from '../../core/params.js';
import { DownloadBudget, downloadImage } from '../../core/download.js';
import type { Timeouts, UpstreamLimits } from '../../core/http.js';
import { sniffImage } from '../../core/image-bytes.js';
import type { ChatMessage, ChatRequest, ContentPart } from '../../core/types.js';

/**
 * OpenAI chat request → Anthropic Messages request (`anthropic-version: 2023-06-01`, §2.1).
 *
 * Decisions (each also a `warnings` entry when it changes what the client asked for):
 * - `max_tokens` is required by Anthropic: `max_completion_tokens ?? max_tokens ?? 4096`.
 * - `temperature`: OpenAI's range is 0–2, Anthropic's 0–1; values above 1 are clamped to 1
 *   (not scaled: 0.7 means the same "fairly focused" on both, and most clients send ≤ 1).
 * - `temperature` and `top_p` together: only `temperature` is sent (models since Opus 4.1 answer
 *   400 "`temperature` and `top_p` cannot both be specified for this model", and the API
 *   reference says to alter one or the other).
 * - JSON mode (the 2023-06-01 API has none): `json_schema` is a forced tool `json_answer` whose
 *   `input_schema` is the schema, its input handed back as the message text; when the request
 *   has tools of its own (a forced tool would shut them out), or the schema's root is not an
 *   object, the schema goes into a system instruction instead. `json_object` is a system instruction.
 * - system and developer messages, wherever they are, are joined (blank line) into `system`.
 * - `n` > 1 cannot be honoured (one answer per call): refused as a bad request, so failover can
 *   try a provider that can. `seed`, penalties, `logit_bias`, `logprobs`, `reasoning_effort` are dropped.
 */

export const anthropicVersion = '2023-06-01';
export const defaultMaxTokens = 4096;
export const jsonToolName = 'json_answer';

/** OpenAI request fields Anthropic has no counterpart for: dropped (each named in `warnings`). */
export const anthropicIgnoredParams = ['seed', 'presence_penalty', 'frequency_penalty', 'logit_bias', 'logprobs', 'top_logprobs', 'reasoning_effort'] as const;

/** OpenAI request fields an Anthropic upstream honours, and its own `top_k`. */
export const anthropicChatParams = chatParamsWithout(anthropicIgnoredParams, ['top_k']);

export interface AnthropicRequest {
  /** The JSON body to POST to `<baseUrl>/messages`. */
  body: Record<string, unknown>;
  /** What the translation dropped or changed, in words a client could be shown. */
  warnings: string[];
  /** The forced tool whose input is the answer (JSON-schema mode), if any. */
  jsonTool: string | undefined;
}

export interface TranslateContext {
  signal: AbortSignal;
  timeouts: Timeouts;
  limits: UpstreamLimits;
}

type Block = Record<string, unknown>;
interface Turn {
  role: 'user' | 'assistant';
  content: Block[];
}

const imageMediaTypes = new Set(['image/jpeg', 'image/png', 'image/gif', 'image/webp']);

export async function toAnthropicRequest(request: ChatRequest, context: TranslateContext): Promise<AnthropicRequest> {
  const n = request.n;
  if (typeof n === 'number' && n > 1) throw badRequest(`n=${n}: Anthropic answers with one choice per call`);
  const warnings: string[] = [];
  const system: string[] = [];
  const images = new ImageFetcher(request.messages, context);
  const turns: Turn[] = [];

  for (const [index, message] of request.messages.entries()) {
    const where = `messages[${index}]`;
    switch (message.role) {
      case 'system':
      case 'developer': {
        const text = plainText(message.content, where);
        if (text !== '') system.push(text);
        break;
      }
      case 'user':
        addTurn(turns, 'user', await userBlocks(message.content, where, images));
        break;
      case 'assistant':
        addTurn(turns, 'assistant', assistantBlocks(message, where));
        break;
      case 'tool':
        addTurn(turns, 'user', [await toolResult(message, where, images)]);
        break;
      default:
        throw badRequest(`${where}.role ${JSON.stringify(message.role)} is not supported by Anthropic upstreams (use "tool" messages for tool results)`);
    }
  }
  if (turns.length === 0) throw badRequest('messages has no user or assistant content; Anthropic needs at least one message besides system ones');
  for (const turn of turns) if (turn.role === 'user') toolResultsFirst(turn.content);
  trimFinalAssistant(turns);

  const body: Record<string, unknown> = { model: request.model, max_tokens: maxTokens(request) };

  let jsonTool: string | undefined;
  const tools = functionTools(request.tools);
  const format = request.response_format as { type?: unknown; json_schema?: { name?: unknown; description?: unknown; schema?: unknown } } | null | undefined;
  if (format?.type === 'json_object') {
    system.push('Respond with a single valid JSON object and nothing else: no prose before or after it, no Markdown code fences.');
  } else if (format?.type === 'json_schema') {
    const schema = format.json_schema?.schema;
    const name = typeof format.json_schema?.name === 'string' ? format.json_schema.name : 'answer';
    if (tools.length === 0 && isObjectSchema(schema)) {
      jsonTool = jsonToolName;
      const description = typeof format.json_schema?.description === 'string' ? ` ${format.json_schema.description}` : '';
      tools.push({
        name: jsonToolName,
        description: `Give your answer (${name}) as this tool's input: it must match the schema.${description}`,
        input_schema: schema,
      });
    } else {
      system.push(
        `Respond with a single JSON value that matches this JSON Schema (${name}), and nothing else: no prose, no Markdown code fences.\n${JSON.stringify(schema ?? {})}`,
      );
    }
  } else if (format !== undefined && format !== null && format.type !== 'text') {
    warnings.push(`response_format ${JSON.stringify(format.type)} is not supported; ignored`);
  }

  if (system.length > 0) body.system = system.join('\n\n');
  body.messages = turns;
  if (tools.length > 0) {
    body.tools = tools;
    const choice = jsonTool !== undefined ? { type: 'tool', name: jsonTool } : toolChoice(request.tool_choice);
    if (request.parallel_tool_calls === false && choice?.type !== 'none') {
      body.tool_choice = { ...(choice ?? { type: 'auto' }), disable_parallel_tool_use: true };
    } else if (choice !== undefined) body.tool_choice = choice;
  }

  const temperature = request.temperature;
  if (typeof temperature === 'number') {
    body.temperature = Math.min(temperature, 1);
    if (temperature > 1) warnings.push(`temperature ${temperature} clamped to 1 (Anthropic's range is 0-1)`);
  }
  if (typeof request.top_p === 'number') {
    if (typeof temperature === 'number') warnings.push('top_p dropped: Anthropic takes temperature or top_p, not both');
    else body.top_p = request.top_p;
  }
  if (typeof request.top_k === 'number') body.top_k = request.top_k;
  const stop = request.stop;
  if (typeof stop === 'string') body.stop_sequences = [stop];
  else if (Array.isArray(stop) && stop.length > 0) body.stop_sequences = stop;
  if (typeof request.user === 'string' && request.user !== '') body.metadata = { user_id: request.user };
  if (request.stream === true) body.stream = true;
  for (const param of anthropicIgnoredParams) {
    if (request[param] !== undefined && request[param] !== null && request[param] !== false) warnings.push(`${param} is not supported by Anthropic; ignored`);
  }
  return { body, warnings, jsonTool };
}

function maxTokens(request: ChatRequest): number {
  const value = request.max_completion_tokens ?? request.max_tokens;
  return typeof value === 'number' && Number.isInteger(value) && value > 0 ? value : defaultMaxTokens;
}

/** Appends to the previous turn when it has the same role (Anthropic wants user/assistant alternating). */
function addTurn(turns: Turn[], role: Turn['role'], content: Block[]): void {
  if (content.length === 0) return;
  const last = turns.at(-1);
  if (last !== undefined && last.role === role) last.content.push(...content);
  else turns.push({ role, content });
}

/** Tool results must open the user turn that answers the tool calls. */
function toolResultsFirst(content: Block[]): void {
  const results = content.filter((block) => block.type === 'tool_result');
  if (results.length === 0 || results.length === content.length) return;
  const others = content.filter((block) => block.type !== 'tool_result');
  content.splice(0, content.length, ...results, ...others);
}

/** A final assistant turn is a prefill; Anthropic refuses one ending in whitespace. */
function trimFinalAssistant(turns: Turn[]): void {
  const last = turns.at(-1);
  if (last?.role !== 'assistant') return;
  const block = last.content.at(-1);
  if (block?.type !== 'text' || typeof block.text !== 'string') return;
  const trimmed = block.text.trimEnd();
  if (trimmed !== '') block.text = trimmed;
  else last.content.pop();
  if (last.content.length === 0) turns.pop();
}

/** System/developer content: a string or text parts. */
function plainText(content: ChatMessage['content'], where: string): string {
  if (content === undefined || content === null) return '';
  if (typeof content === 'string') return content;
  return content
    .map((part, index) => {
      if (part.type === 'text' && typeof part.text === 'string') return part.text;
      throw badRequest(`${where}.content[${index}]: a ${JSON.stringify(part.type)} part cannot go into Anthropic's system prompt (text only)`);
    })
    .join('\n');
}

async function userBlocks(content: ChatMessage['content'], where: string, images: ImageFetcher): Promise<Block[]> {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content === '' ? [] : [{ type: 'text', text: content }];
  const blocks: Block[] = [];
  for (const [index, part] of content.entries()) {
    const block = await partBlock(part, `${where}.content[${index}]`, images);
    if (block !== undefined) blocks.push(block);
  }
  return blocks;
}

async function partBlock(part: ContentPart, where: string, images: ImageFetcher): Promise<Block | undefined> {
  switch (part.type) {
    case 'text':
      if (typeof part.text !== 'string') throw badRequest(`${where}.text must be a string`);
      return part.text === '' ? undefined : { type: 'text', text: part.text };
    case 'image_url': {
      const url = imageUrlOf(part);
      if (typeof url !== 'string') throw badRequest(`${where}.image_url.url must be a string`);
      return { type: 'image', source: await images.source(url, where) };
    }
    default:
      throw badRequest(`${where}: content parts of type ${JSON.stringify(part.type)} are not supported by Anthropic upstreams (text and image_url are)`);
  }
}

function assistantBlocks(message: ChatMessage, where: string): Block[] {
  const blocks: Block[] = [];
  const content = message.content;
  if (typeof content === 'string') {
    if (content !== '') blocks.push({ type: 'text', text: content });
  } else if (Array.isArray(content)) {
    for (const [index, part] of content.entries()) {
      const text = part.type === 'text' ? part.text : part.type === 'refusal' ? part.refusal : undefined;
      if (typeof text !== 'string') throw badRequest(`${where}.content[${index}]: assistant messages take text parts only`);
      if (text !== '') blocks.push({ type: 'text', text });
    }
  }
  for (const [index, call] of (message.tool_calls ?? []).entries()) {
    const at = `${where}.tool_calls[${index}]`;
    if (typeof call !== 'object' || call === null || typeof call.id !== 'string' || typeof call.function?.name !== 'string') {
      throw badRequest(`${at} needs an id and a function name`);
    }
    blocks.push({ type: 'tool_use', id: call.id, name: call.function.name, input: toolInput(call.function.arguments, at) });
  }
  return blocks;
}

/** Tool call arguments (a JSON string in OpenAI) as the object Anthropic's `input` must be. */
function toolInput(args: unknown, where: string): Record<string, unknown> {
  if (args === undefined || args === null || (typeof args === 'string' && args.trim() === '')) return {};
  if (typeof args !== 'string') throw badRequest(`${where}.function.arguments must be a JSON string`);
  let value: unknown;
  try {
    value = JSON.parse(args);
  } catch {
    throw badRequest(`${where}.function.arguments is not valid JSON: ${args.slice(0, 100)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw badRequest(`${where}.function.arguments must be a JSON object`);
  return value as Record<string, unknown>;
}

async function toolResult(message: ChatMessage, where: string, images: ImageFetcher): Promise<Block> {
  if (typeof message.tool_call_id !== 'string' || message.tool_call_id === '') throw badRequest(`${where}.tool_call_id is required`);
  const block: Block = { type: 'tool_result', tool_use_id: message.tool_call_id };
  const content = message.content;
  if (typeof content === 'string') {
    if (content !== '') block.content = content;
  } else if (Array.isArray(content)) {
    const blocks = await userBlocks(content, where, images);
    if (blocks.length > 0) block.content = blocks;
  }
  return block;
}

function functionTools(tools: unknown): Block[] {
  if (tools === undefined || tools === null) return [];
  if (!Array.isArray(tools)) throw badRequest('tools must be an array');
  return tools.map((tool: unknown, index) => {
    const t = (tool ?? {}) as { type?: unknown; function?: { name?: unknown; description?: unknown; parameters?: unknown } };
    if (t.type !== 'function' || typeof t.function?.name !== 'string') throw badRequest(`tools[${index}]: only function tools with a name are supported`);
    const parameters = t.function.parameters;
    return {
      name: t.function.name,
      ...(typeof t.function.description === 'string' ? { description: t.function.description } : {}),
      input_schema: isObjectSchema(parameters) ? parameters : { type: 'object', properties: {} },
    };
  });
}

function toolChoice(choice: unknown): Block | undefined {
  if (choice === undefined || choice === null) return undefined;
  if (choice === 'auto') return { type: 'auto' };
  if (choice === 'required') return { type: 'any' };
  if (choice === 'none') return { type: 'none' };
  const name = (choice as { type?: unknown; function?: { name?: unknown } }).function?.name;
  if (typeof choice === 'object' && (choice as { type?: unknown }).type === 'function' && typeof name === 'string') return { type: 'tool', name };
  throw badRequest(`tool_choice ${JSON.stringify(choice).slice(0, 100)} is not one of "auto", "required", "none" or {"type":"function","function":{"name":…}}`);
}

/** An `input_schema` must describe an object. */
function isObjectSchema(schema: unknown): schema is Record<string, unknown> {
  return typeof schema === 'object' && schema !== null && !Array.isArray(schema) && (schema as Record<string, unknown>).type === 'object';
}

/**
 * Image parts as Anthropic base64 sources: data URIs decoded in place, http(s) URLs downloaded
 * (no credentials, no redirects, within one byte budget for the whole request), media types
 * taken from the bytes.
 */
class ImageFetcher {
  readonly #context: TranslateContext;
  readonly #remote: number;
  #budget: DownloadBudget | undefined;

  constructor(messages: readonly ChatMessage[], context: TranslateContext) {
    this.#context = context;
    let remote = 0;
    for (const message of messages) {
      if (!Array.isArray(message.content)) continue;
      for (const part of message.content) if (part.type === 'image_url' && /^https?:/i.test(imageUrlOf(part) ?? '')) remote += 1;
    }
    this.#remote = remote;
  }

  async source(url: string, where: string): Promise<Block> {
    if (url.startsWith('data:')) return dataUriSource(url, where);
    if (!/^https?:\/\//i.test(url)) throw badRequest(`${where}.image_url.url must be an http(s) URL or a data: URI`);
    this.#budget ??= new DownloadBudget(this.#context.limits.maxBodyBytes, this.#remote);
    let bytes: Buffer;
    try {
      bytes = await downloadImage(url, {
        credentials: undefined,
        signal: this.#context.signal,
        timeouts: this.#context.timeouts,
        budget: this.#budget,
        allowPrivate: this.#context.limits.privateDownloads,
      });
    } catch (error) {
      if (error instanceof UpstreamError && error.kind === 'aborted') throw error;
      const reason = error instanceof Error ? error.message : String(error);
      // The client's URL, not the provider, failed: no other provider would do better.
      throw badRequest(`${where}: the image at ${url.slice(0, 200)} could not be fetched: ${reason}`);
    }
    const format = sniffImage(bytes);
    if (format === undefined) throw badRequest(`${where}: ${url.slice(0, 200)} is not a PNG, JPEG, GIF or WebP image`);
    return { type: 'base64', media_type: format.contentType, data: bytes.toString('base64') };
  }
}

/** `image_url: {url}` as OpenAI specifies it, or the bare string some clients send. */
function imageUrlOf(part: ContentPart): string | undefined {
  const value: unknown = part.image_url;
  if (typeof value === 'string') return value;
  const url = (value as { url?: unknown } | undefined)?.url;
  return typeof url === 'string' ? url : undefined;
}

function dataUriSource(url: string, where: string): Block {
  const comma = url.indexOf(',');
  const meta = comma === -1 ? '' : url.slice(5, comma);
  if (comma === -1 || !/;base64$/i.test(meta)) throw badRequest(`${where}.image_url.url: only base64 data: URIs are supported`);
  const data = url.slice(comma + 1).replace(/\s+/g, '');
  if (data === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(data)) throw badRequest(`${where}.image_url.url: the data: URI is not valid base64`);
  const declared = meta.slice(0, meta.indexOf(';')).toLowerCase();
  const sniffed = sniffImage(Buffer.from(data.slice(0, 24), 'base64'))?.contentType;
  const mediaType = sniffed ?? (imageMediaTypes.has(declared) ? declared : undefined);
  if (mediaType === undefined) throw badRequest(`${where}: the data: URI is not a PNG, JPEG, GIF or WebP image`);
  return { type: 'base64', media_type: mediaType, data };
}

function badRequest(message: string): UpstreamError {
  return new UpstreamError('bad_request', message);
}
