/**
 * OpenAI wire types, as much of them as the gateway reads or writes.
 * Unknown fields are kept (index signatures) so that pass-through providers lose nothing.
 */

export type Role = 'system' | 'developer' | 'user' | 'assistant' | 'tool' | 'function';

export interface ContentPart {
  type: string;
  text?: string;
  image_url?: { url: string; detail?: string };
  [key: string]: unknown;
}

export interface ToolCall {
  id: string;
  type: 'function';
  function: { name: string; arguments: string };
}

export interface ChatMessage {
  role: Role;
  content?: string | ContentPart[] | null;
  name?: string;
  tool_calls?: ToolCall[];
  tool_call_id?: string;
  [key: string]: unknown;
}

/** The body the gateway forwards: OpenAI's chat body without the gateway-only fields. */
export interface ChatRequest {
  model: string;
  messages: ChatMessage[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean; [key: string]: unknown } | null;
  max_tokens?: number | null;
  max_completion_tokens?: number | null;
  temperature?: number | null;
  top_p?: number | null;
  n?: number | null;
  stop?: string | string[] | null;
  seed?: number | null;
  [key: string]: unknown;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  [key: string]: unknown;
}

export type FinishReason = 'stop' | 'length' | 'tool_calls' | 'content_filter' | 'function_call';

export interface ChatChoice {
  index: number;
  message: {
    role: 'assistant';
    content: string | null;
    refusal?: string | null;
    tool_calls?: ToolCall[];
    [key: string]: unknown;
  };
  finish_reason: FinishReason;
  logprobs: unknown;
  [key: string]: unknown;
}

export interface ChatCompletion {
  id: string;
  object: 'chat.completion';
  created: number;
  model: string;
  choices: ChatChoice[];
  usage?: Usage;
  system_fingerprint?: string;
  /** Added by the gateway: the provider that answered. */
  provider?: string;
  [key: string]: unknown;
}

export interface ChunkDelta {
  role?: 'assistant';
  content?: string | null;
  refusal?: string | null;
  tool_calls?: Array<{ index: number; id?: string; type?: 'function'; function?: { name?: string; arguments?: string } }>;
  [key: string]: unknown;
}

export interface ChunkChoice {
  index: number;
  delta: ChunkDelta;
  finish_reason: FinishReason | null;
  logprobs?: unknown;
  [key: string]: unknown;
}

export interface ChatChunk {
  id: string;
  object: 'chat.completion.chunk';
  created: number;
  model: string;
  choices: ChunkChoice[];
  usage?: Usage | null;
  system_fingerprint?: string;
  provider?: string;
  [key: string]: unknown;
}

/** OpenAI's error object, the only error shape the gateway ever returns. */
export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** An image generation request, as the gateway hands it to a provider. */
export interface ImageRequest {
  prompt: string;
  /** Upstream model id after the provider's aliases. */
  model: string;
  n: number;
  width?: number;
  height?: number;
  seed?: number;
  negativePrompt?: string;
  /** Fields passed through to providers that know them (quality, style, ...). */
  extra: Record<string, unknown>;
}

export interface GeneratedImage {
  bytes: Buffer;
  revisedPrompt?: string;
  /** The seed actually used, when the upstream says. */
  seed?: number;
}

export interface ImageResult {
  images: GeneratedImage[];
  /** The model (or Space) that really made them. */
  model: string;
}
