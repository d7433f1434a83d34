import { DownloadBudget, downloadImage } from '../../core/download.js';
import { UpstreamError } from '../../core/errors.js';
import type { Timeouts, UpstreamLimits } from '../../core/http.js';
import { sniffImage } from '../../core/image-bytes.js';
import type { ChatMessage, ChatRequest, ContentPart, ToolCall } from '../../core/types.js';
import { isRecord, toGeminiSchema } from './schema.js';

/** One Gemini `Part` (only the kinds this adapter writes). */
export type GeminiPart =
  | { text: string; thought?: boolean; thoughtSignature?: string }
  | { inlineData: { mimeType: string; data: string } }
  | { functionCall: { name: string; args: Record<string, unknown> }; thoughtSignature?: string }
  | { functionResponse: { name: string; response: Record<string, unknown> } };

export interface GeminiContent {
  role: 'user' | 'model';
  parts: GeminiPart[];
}

export interface GeminiRequest {
  contents: GeminiContent[];
  systemInstruction?: { parts: Array<{ text: string }> };
  generationConfig?: Record<string, unknown>;
  tools?: Array<{ functionDeclarations: Array<Record<string, unknown>> }>;
  toolConfig?: { functionCallingConfig: { mode: 'AUTO' | 'ANY' | 'NONE'; allowedFunctionNames?: string[] } };
}

/** What translating a request needs besides the request. */
export interface TranslateOptions {
  /** The Gemini model id (without `models/`): decides the thought-signature fallback. */
  model: string;
  signal: AbortSignal;
  limits: UpstreamLimits;
  timeouts: Timeouts;
}

/**
 * Gemini 3 refuses a history whose model turn has a function call without the thought signature
 * it came with (400 "Function call is missing a thought_signature"). Signatures travel in
 * `tool_calls[].extra_content.google.thought_signature` (as on Google's own OpenAI-compatible
 * endpoint); when a client dropped it, or the call came from another model, the first call of the
 * turn carries this value, which Google documents for exactly that case.
 */
export const skipSignature = 'skip_thought_signature_validator';

/** Gemini 1.x/2.x and Gemma do not check signatures: they get none they were not given. */
function checksSignatures(model: string): boolean {
  return !/^(gemini-(1|2)[.-]|gemma)/i.test(model);
}

/** OpenAI chat body → Gemini `GenerateContentRequest`. Image URLs are downloaded and inlined. */
export async function toGeminiRequest(request: ChatRequest, options: TranslateOptions): Promise<GeminiRequest> {
  const system: Array<{ text: string }> = [];
  const contents: GeminiContent[] = [];
  /** tool_call_id → function name, from the assistant turns seen so far. */
  const callNames = new Map<string, string>();
  const images = new ImageFetcher(request.messages, options);
  const push = (role: GeminiContent['role'], parts: GeminiPart[]): void => {
    if (parts.length === 0) return;
    const last = contents.at(-1);
    // Gemini wants turns to alternate: consecutive messages of one role become one turn.
    if (last !== undefined && last.role === role) last.parts.push(...parts);
    else contents.push({ role, parts });
  };

  for (const [index, message] of request.messages.entries()) {
    if (!isRecord(message)) throw badRequest(`messages[${index}] is not an object`);
    const where = `messages[${index}]`;
    switch (message.role) {
      case 'system':
      case 'developer':
        // Gemini has one system instruction: every system message goes there, in order.
        for (const text of textsOf(message.content, where)) system.push({ text });
        break;
      case 'user':
        push('user', await userParts(message, where, images));
        break;
      case 'assistant':
        push('model', assistantParts(message, where, callNames, checksSignatures(options.model)));
        break;
      case 'tool': {
        const id = message.tool_call_id;
        const name =
          (typeof id === 'string' ? callNames.get(id) : undefined) ?? (typeof message.name === 'string' && message.name !== '' ? message.name : undefined);
        if (name === undefined)
          throw badRequest(`${where}: no earlier assistant tool call has the id ${JSON.stringify(id)} (Gemini needs the function's name)`);
        push('user', [{ functionResponse: { name, response: responseObject(message.content, where) } }]);
        break;
      }
      case 'function': {
        if (typeof message.name !== 'string' || message.name === '') throw badRequest(`${where}: a function message needs a name`);
        push('user', [{ functionResponse: { name: message.name, response: responseObject(message.content, where) } }]);
        break;
      }
      default:
        throw badRequest(`${where}: unknown role ${JSON.stringify(String(message.role)).slice(0, 50)}`);
    }
  }

  const out: GeminiRequest = { contents };
  if (contents.length === 0) {
    // Only system messages: Gemini needs contents, so the instructions become the user's turn.
    if (system.length === 0) throw badRequest('messages: nothing to send (no message has content)');
    contents.push({ role: 'user', parts: system.splice(0) });
  }
  if (system.length > 0) out.systemInstruction = { parts: system };

  const generationConfig = generationConfigOf(request);
  if (Object.keys(generationConfig).length > 0) out.generationConfig = generationConfig;

  const tools = toolsOf(request);
  if (tools !== undefined) {
    if (tools.declarations.length > 0) out.tools = [{ functionDeclarations: tools.declarations }];
    // A toolConfig without tools says nothing (and `none` with no tools is what happens anyway).
    if (tools.config !== undefined && tools.declarations.length > 0) out.toolConfig = { functionCallingConfig: tools.config };
  }
  return out;
}

// ---------------------------------------------------------------- messages

function textsOf(content: unknown, where: string): string[] {
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content === '' ? [] : [content];
  if (!Array.isArray(content)) throw badRequest(`${where}.content must be a string or an array of parts`);
  const texts: string[] = [];
  for (const [index, part] of content.entries()) {
    if (!isRecord(part)) throw badRequest(`${where}.content[${index}] is not an object`);
    if ((part.type === 'text' || part.type === 'refusal') && typeof (part.text ?? part.refusal) === 'string') {
      const text = (part.text ?? part.refusal) as string;
      if (text !== '') texts.push(text);
    } else {
      throw badRequest(`${where}.content[${index}]: only text parts are allowed here (found ${JSON.stringify(String(part.type)).slice(0, 40)})`);
    }
  }
  return texts;
}

async function userParts(message: ChatMessage, where: string, images: ImageFetcher): Promise<GeminiPart[]> {
  const content = message.content;
  if (content === undefined || content === null) return [];
  if (typeof content === 'string') return content === '' ? [] : [{ text: content }];
  if (!Array.isArray(content)) throw badRequest(`${where}.content must be a string or an array of parts`);
  const parts: GeminiPart[] = [];
  for (const [index, part] of (content as ContentPart[]).entries()) {
    const at = `${where}.content[${index}]`;
    if (!isRecord(part)) throw badRequest(`${at} is not an object`);
    switch (part.type) {
      case 'text':
        if (typeof part.text !== 'string') throw badRequest(`${at}.text must be a string`);
        if (part.text !== '') parts.push({ text: part.text });
        break;
      case 'image_url': {
        const url = isRecord(part.image_url) ? part.image_url.url : part.image_url;
        if (typeof url !== 'string' || url === '') throw badRequest(`${at}.image_url.url must be a string`);
        parts.push({ inlineData: await images.inline(url, at) });
        break;
      }
      case 'input_audio': {
        const audio = part.input_audio;
        if (!isRecord(audio) || typeof audio.data !== 'string' || typeof audio.format !== 'string') throw badRequest(`${at}.input_audio needs data and format`);
        parts.push({ inlineData: { mimeType: audio.format === 'mp3' ? 'audio/mp3' : `audio/${audio.format}`, data: audio.data } });
        break;
      }
      case 'file': {
        const file = part.file;
        const data = isRecord(file) ? file.file_data : undefined;
        if (typeof data !== 'string' || !data.startsWith('data:'))
          throw badRequest(`${at}: only files given inline as file_data (a data: URI) can be sent to Gemini`);
        parts.push({ inlineData: parseDataUri(data, at) });
        break;
      }
      default:
        throw badRequest(`${at}: unsupported content part type ${JSON.stringify(String(part.type)).slice(0, 40)}`);
    }
  }
  return parts;
}

function assistantParts(message: ChatMessage, where: string, callNames: Map<string, string>, needsSignature: boolean): GeminiPart[] {
  const parts: GeminiPart[] = textsOf(message.content, where).map((text) => ({ text }));
  const calls: Array<{ id?: unknown; function: { name: unknown; arguments: unknown }; extra_content?: unknown }> = [];
  if (message.tool_calls !== undefined && message.tool_calls !== null) {
    if (!Array.isArray(message.tool_calls)) throw badRequest(`${where}.tool_calls must be an array`);
    for (const [index, call] of (message.tool_calls as ToolCall[]).entries()) {
      if (!isRecord(call) || !isRecord(call.function)) throw badRequest(`${where}.tool_calls[${index}] needs a function`);
      calls.push(call as (typeof calls)[number]);
    }
  }
  // The legacy single `function_call`.
  if (isRecord(message.function_call)) calls.push({ function: message.function_call as { name: unknown; arguments: unknown } });
  let first = true;
  for (const [index, call] of calls.entries()) {
    const at = `${where}.tool_calls[${index}]`;
    const name = call.function.name;
    if (typeof name !== 'string' || name === '') throw badRequest(`${at}.function.name must be a non-empty string`);
    if (typeof call.id === 'string') callNames.set(call.id, name);
    const part: GeminiPart = { functionCall: { name, args: parseArguments(call.function.arguments, at) } };
    const signature = signatureOf(call.extra_content);
    if (signature !== undefined) part.thoughtSignature = signature;
    else if (first && needsSignature) part.thoughtSignature = skipSignature;
    first = false;
    parts.push(part);
  }
  return parts;
}

/** `extra_content.google.thought_signature`, as Google's OpenAI-compatible endpoint names it. */
function signatureOf(extra: unknown): string | undefined {
  if (!isRecord(extra) || !isRecord(extra.google)) return undefined;
  const signature = extra.google.thought_signature;
  return typeof signature === 'string' && signature !== '' ? signature : undefined;
}

/** Tool call arguments: a JSON object (as text); empty means none. */
function parseArguments(raw: unknown, where: string): Record<string, unknown> {
  if (raw === undefined || raw === null || raw === '') return {};
  if (isRecord(raw)) return raw; // some clients send the object itself
  if (typeof raw !== 'string') throw badRequest(`${where}.function.arguments must be a JSON string`);
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw badRequest(`${where}.function.arguments is not valid JSON: ${raw.slice(0, 100)}`);
  }
  if (!isRecord(value)) throw badRequest(`${where}.function.arguments must be a JSON object (Gemini's args are a Struct)`);
  return value;
}

/**
 * A tool result as Gemini's `functionResponse.response` (a JSON object): a JSON object result as
 * it is, anything else as `{content: <parsed JSON or the text>}`.
 */
function responseObject(content: unknown, where: string): Record<string, unknown> {
  const text = textsOf(content, where).join('');
  try {
    const value: unknown = JSON.parse(text);
    return isRecord(value) ? value : { content: value };
  } catch {
    return { content: text };
  }
}

// ---------------------------------------------------------------- images

/** Inlines image URLs: `data:` URIs as they are, http(s) downloaded without credentials, bounded. */
class ImageFetcher {
  readonly #options: TranslateOptions;
  readonly #budget: DownloadBudget;

  constructor(messages: readonly ChatMessage[], options: TranslateOptions) {
    this.#options = options;
    let remote = 0;
    for (const message of messages) {
      if (!isRecord(message) || !Array.isArray(message.content)) continue;
      for (const part of message.content) {
        const url = !isRecord(part) ? undefined : isRecord(part.image_url) ? part.image_url.url : part.image_url;
        if (typeof url === 'string' && /^https?:/i.test(url)) remote += 1;
      }
    }
    // All of a request's downloads share one body cap.
    this.#budget = new DownloadBudget(options.limits.maxBodyBytes, remote);
  }

  async inline(url: string, where: string): Promise<{ mimeType: string; data: string }> {
    if (url.startsWith('data:')) return parseDataUri(url, where);
    if (!/^https?:\/\//i.test(url)) throw badRequest(`${where}: an image URL must be http(s) or a data: URI`);
    let bytes: Buffer;
    try {
      bytes = await downloadImage(url, {
        credentials: undefined,
        signal: this.#options.signal,
        timeouts: this.#options.timeouts,
        budget: this.#budget,
        allowPrivate: this.#options.limits.privateDownloads,
      });
    } catch (error) {
      // The attempt itself was stopped (client gone, deadline): say so, not "bad image".
      if (this.#options.signal.aborted || (error instanceof UpstreamError && error.kind === 'aborted')) throw error;
      const reason = error instanceof Error ? error.message.replace('(a file the upstream named)', '') : String(error);
      throw badRequest(`${where}: could not fetch the image at ${url.slice(0, 200)}: ${reason}`);
    }
    return { mimeType: sniffImage(bytes)?.contentType ?? 'application/octet-stream', data: bytes.toString('base64') };
  }
}

/** `data:<mime>[;base64],<data>` → inlineData (percent-encoded data is re-encoded as base64). */
function parseDataUri(uri: string, where: string): { mimeType: string; data: string } {
  const comma = uri.indexOf(',');
  if (comma === -1) throw badRequest(`${where}: malformed data: URI`);
  const meta = uri.slice(5, comma).split(';');
  const mimeType = (meta[0] ?? '').trim().toLowerCase() || 'text/plain';
  const payload = uri.slice(comma + 1);
  if (meta.slice(1).some((param) => param.trim().toLowerCase() === 'base64')) {
    const data = payload.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(data)) throw badRequest(`${where}: the data: URI is not valid base64`);
    return { mimeType, data };
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(payload);
  } catch {
    throw badRequest(`${where}: malformed data: URI`);
  }
  return { mimeType, data: Buffer.from(decoded, 'utf8').toString('base64') };
}

// ---------------------------------------------------------------- generation config

function generationConfigOf(request: ChatRequest): Record<string, unknown> {
  const config: Record<string, unknown> = {};
  const maxTokens = request.max_completion_tokens ?? request.max_tokens;
  if (typeof maxTokens === 'number') config.maxOutputTokens = maxTokens;
  if (typeof request.temperature === 'number') config.temperature = request.temperature;
  if (typeof request.top_p === 'number') config.topP = request.top_p;
  if (typeof request.n === 'number') config.candidateCount = request.n;
  if (typeof request.seed === 'number') config.seed = request.seed;
  if (typeof request.presence_penalty === 'number') config.presencePenalty = request.presence_penalty;
  if (typeof request.frequency_penalty === 'number') config.frequencyPenalty = request.frequency_penalty;
  const stop = request.stop;
  if (typeof stop === 'string' && stop !== '') config.stopSequences = [stop];
  else if (Array.isArray(stop)) {
    const sequences = stop.filter((item): item is string => typeof item === 'string' && item !== '');
    if (sequences.length > 0) config.stopSequences = sequences;
  }
  const format = request.response_format;
  if (isRecord(format)) {
    if (format.type === 'json_object') config.responseMimeType = 'application/json';
    else if (format.type === 'json_schema') {
      config.responseMimeType = 'application/json';
      const spec = isRecord(format.json_schema) ? format.json_schema : {};
      if (spec.schema !== undefined) config.responseSchema = toGeminiSchema(spec.schema, 'response_format.json_schema.schema');
    }
  }
  return config;
}

// ---------------------------------------------------------------- tools

type FunctionCallingConfig = NonNullable<GeminiRequest['toolConfig']>['functionCallingConfig'];

function toolsOf(request: ChatRequest): { declarations: Array<Record<string, unknown>>; config: FunctionCallingConfig | undefined } | undefined {
  const tools = request.tools;
  const choice = request.tool_choice;
  if ((tools === undefined || tools === null) && (choice === undefined || choice === null)) return undefined;
  let declarations: Array<Record<string, unknown>> = [];
  if (tools !== undefined && tools !== null) {
    if (!Array.isArray(tools)) throw badRequest('tools must be an array');
    for (const [index, tool] of tools.entries()) {
      const where = `tools[${index}]`;
      if (!isRecord(tool) || tool.type !== 'function' || !isRecord(tool.function)) {
        throw badRequest(`${where}: Gemini takes only function tools (found ${JSON.stringify(isRecord(tool) ? String(tool.type) : typeof tool).slice(0, 40)})`);
      }
      const fn = tool.function;
      if (typeof fn.name !== 'string' || fn.name === '') throw badRequest(`${where}.function.name must be a non-empty string`);
      const declaration: Record<string, unknown> = { name: fn.name };
      if (typeof fn.description === 'string' && fn.description !== '') declaration.description = fn.description;
      if (fn.parameters !== undefined && fn.parameters !== null) {
        const parameters = toGeminiSchema(fn.parameters, `${where}.function.parameters`);
        // A function without arguments has no parameters at all: Gemini refuses an OBJECT without properties.
        const empty = parameters.type === 'OBJECT' && (!isRecord(parameters.properties) || Object.keys(parameters.properties).length === 0);
        if (!empty && Object.keys(parameters).length > 0) declaration.parameters = parameters;
      }
      declarations.push(declaration);
    }
  }

  let config: FunctionCallingConfig | undefined;
  if (choice === 'auto') config = { mode: 'AUTO' };
  else if (choice === 'none') config = { mode: 'NONE' };
  else if (choice === 'required') config = { mode: 'ANY' };
  else if (isRecord(choice) && choice.type === 'function') {
    const name = isRecord(choice.function) ? choice.function.name : undefined;
    if (typeof name !== 'string' || name === '') throw badRequest('tool_choice.function.name must be a non-empty string');
    if (!declarations.some((declaration) => declaration.name === name))
      throw badRequest(`tool_choice names ${JSON.stringify(name)}, which is not among the tools`);
    config = { mode: 'ANY', allowedFunctionNames: [name] };
  } else if (isRecord(choice) && choice.type === 'allowed_tools' && isRecord(choice.allowed_tools)) {
    // {type: allowed_tools, allowed_tools: {mode: auto|required, tools: [{type: function, function: {name}}]}}
    const allowed = new Set<string>();
    for (const tool of Array.isArray(choice.allowed_tools.tools) ? choice.allowed_tools.tools : []) {
      const name = isRecord(tool) && isRecord(tool.function) ? tool.function.name : undefined;
      if (typeof name === 'string') allowed.add(name);
    }
    if (choice.allowed_tools.mode === 'required') config = allowed.size > 0 ? { mode: 'ANY', allowedFunctionNames: [...allowed] } : { mode: 'ANY' };
    else {
      // Gemini takes allowedFunctionNames only with ANY: in auto mode, the others are not offered.
      declarations = declarations.filter((declaration) => allowed.has(declaration.name as string));
      config = { mode: 'AUTO' };
    }
  } else if (choice !== undefined && choice !== null) {
    throw badRequest('tool_choice must be "auto", "none", "required" or {type: "function", function: {name}}');
  }
  return { declarations, config };
}

function badRequest(message: string): UpstreamError {
  return new UpstreamError('bad_request', message, { status: 400 });
}
