import type { ChatChunk } from '../../core/types.js';
import type { OpenAICompatibleDeclaration } from './define.js';

/**
 * The built-in OpenAI-compatible providers: official, documented APIs only. Base URLs end
 * before `/chat/completions`. Model lists are the well-known ids at the time of writing; any
 * other id is passed through to the upstream unchanged when the provider is named explicitly.
 */

const huggingFaceModels = [
  'meta-llama/Llama-3.3-70B-Instruct',
  'meta-llama/Llama-3.1-8B-Instruct',
  'Qwen/Qwen2.5-72B-Instruct',
  'Qwen/Qwen2.5-Coder-32B-Instruct',
  'Qwen/QwQ-32B',
  'Qwen/Qwen2.5-VL-7B-Instruct',
  'deepseek-ai/DeepSeek-R1',
  'deepseek-ai/DeepSeek-V3-0324',
  'google/gemma-3-27b-it',
  'mistralai/Mistral-Small-3.1-24B-Instruct-2503',
  'openai/gpt-oss-120b',
  'openai/gpt-oss-20b',
] as const;

const huggingFaceAliases = {
  'llama-3.3-70b': 'meta-llama/Llama-3.3-70B-Instruct',
  'llama-3.1-8b': 'meta-llama/Llama-3.1-8B-Instruct',
  'qwen-2.5-72b': 'Qwen/Qwen2.5-72B-Instruct',
  'qwen-2.5-coder-32b': 'Qwen/Qwen2.5-Coder-32B-Instruct',
  'qwq-32b': 'Qwen/QwQ-32B',
  'deepseek-r1': 'deepseek-ai/DeepSeek-R1',
  'deepseek-v3': 'deepseek-ai/DeepSeek-V3-0324',
  'gemma-3-27b': 'google/gemma-3-27b-it',
  'gpt-oss-120b': 'openai/gpt-oss-120b',
  'gpt-oss-20b': 'openai/gpt-oss-20b',
} as const;

export const openAICompatibleCatalog: readonly OpenAICompatibleDeclaration[] = [
  {
    id: 'HuggingChat',
    label: 'HuggingChat (Hugging Face Inference Providers)',
    url: 'https://huggingface.co/chat',
    loginUrl: 'https://huggingface.co/settings/tokens',
    parent: 'HuggingFace',
    baseUrl: 'https://router.huggingface.co/v1',
    needsAuth: true,
    apiKeyEnv: ['HF_TOKEN', 'HUGGINGFACE_API_KEY'],
    defaultModel: 'meta-llama/Llama-3.3-70B-Instruct',
    models: [
      'meta-llama/Llama-3.3-70B-Instruct',
      'Qwen/Qwen2.5-72B-Instruct',
      'Qwen/QwQ-32B',
      'deepseek-ai/DeepSeek-R1',
      'google/gemma-3-27b-it',
      'openai/gpt-oss-120b',
    ],
    visionModels: ['google/gemma-3-27b-it'],
    aliases: {
      'llama-3.3-70b': 'meta-llama/Llama-3.3-70B-Instruct',
      'qwen-2.5-72b': 'Qwen/Qwen2.5-72B-Instruct',
      'qwq-32b': 'Qwen/QwQ-32B',
      'deepseek-r1': 'deepseek-ai/DeepSeek-R1',
      'gemma-3-27b': 'google/gemma-3-27b-it',
      'gpt-oss-120b': 'openai/gpt-oss-120b',
    },
  },
  {
    id: 'HuggingFace',
    label: 'Hugging Face Inference Providers',
    url: 'https://huggingface.co/docs/inference-providers',
    loginUrl: 'https://huggingface.co/settings/tokens',
    baseUrl: 'https://router.huggingface.co/v1',
    needsAuth: true,
    apiKeyEnv: ['HF_TOKEN', 'HUGGINGFACE_API_KEY'],
    defaultModel: 'meta-llama/Llama-3.1-8B-Instruct',
    models: huggingFaceModels,
    visionModels: ['Qwen/Qwen2.5-VL-7B-Instruct', 'google/gemma-3-27b-it'],
    aliases: {
      ...huggingFaceAliases,
      flux: 'black-forest-labs/FLUX.1-schnell',
      'flux-schnell': 'black-forest-labs/FLUX.1-schnell',
      'flux-dev': 'black-forest-labs/FLUX.1-dev',
      'sd-3.5': 'stabilityai/stable-diffusion-3.5-large',
      'sd-3.5-large': 'stabilityai/stable-diffusion-3.5-large',
    },
    // Text-to-image through the router's hf-inference provider (raw image bytes back).
    images: {
      api: 'hf-inference',
      models: ['black-forest-labs/FLUX.1-schnell', 'black-forest-labs/FLUX.1-dev', 'stabilityai/stable-diffusion-3.5-large'],
    },
  },
  {
    id: 'OpenaiAPI',
    label: 'OpenAI API',
    url: 'https://platform.openai.com',
    loginUrl: 'https://platform.openai.com/api-keys',
    baseUrl: 'https://api.openai.com/v1',
    needsAuth: true,
    apiKeyEnv: ['OPENAI_API_KEY'],
    defaultModel: 'gpt-4o-mini',
    models: ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'o3-mini', 'o4-mini', 'gpt-5', 'gpt-5-mini', 'gpt-5-nano'],
    visionModels: ['gpt-4o', 'gpt-4o-mini', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-5', 'gpt-5-mini'],
    aliases: { 'gpt-image': 'gpt-image-1', 'dall-e': 'dall-e-3' },
    images: { api: 'openai', models: ['gpt-image-1', 'dall-e-3', 'dall-e-2'] },
  },
  {
    id: 'PollinationsAI',
    label: 'Pollinations.AI',
    url: 'https://pollinations.ai',
    loginUrl: 'https://auth.pollinations.ai',
    baseUrl: 'https://text.pollinations.ai',
    chatPath: '/openai',
    needsAuth: false,
    apiKeyEnv: ['POLLINATIONS_API_KEY'],
    defaultModel: 'openai',
    models: ['openai', 'openai-fast', 'openai-large', 'mistral', 'deepseek-reasoning', 'qwen-coder'],
    visionModels: ['openai', 'openai-large'],
    aliases: {
      'gpt-5-mini': 'openai',
      'gpt-4.1-nano': 'openai-fast',
      'deepseek-r1': 'deepseek-reasoning',
      'flux-dev': 'flux',
      'flux-schnell': 'flux',
      'flux-pro': 'flux',
      'flux-kontext': 'kontext',
      'gpt-image': 'gptimage',
      'sdxl-turbo': 'turbo',
    },
    // Text through its OpenAI-compatible endpoint, images through its image endpoint (no key needed).
    images: { api: 'pollinations', models: ['flux', 'kontext', 'turbo', 'gptimage'], baseUrl: 'https://image.pollinations.ai' },
  },
  {
    id: 'Groq',
    label: 'Groq',
    url: 'https://console.groq.com',
    loginUrl: 'https://console.groq.com/keys',
    baseUrl: 'https://api.groq.com/openai/v1',
    needsAuth: true,
    apiKeyEnv: ['GROQ_API_KEY'],
    defaultModel: 'llama-3.3-70b-versatile',
    models: [
      'llama-3.3-70b-versatile',
      'llama-3.1-8b-instant',
      'openai/gpt-oss-120b',
      'openai/gpt-oss-20b',
      'qwen/qwen3-32b',
      'meta-llama/llama-4-scout-17b-16e-instruct',
    ],
    visionModels: ['meta-llama/llama-4-scout-17b-16e-instruct'],
    aliases: {
      'llama-3.3-70b': 'llama-3.3-70b-versatile',
      'llama-3.1-8b': 'llama-3.1-8b-instant',
      'gpt-oss-120b': 'openai/gpt-oss-120b',
      'gpt-oss-20b': 'openai/gpt-oss-20b',
      'qwen-3-32b': 'qwen/qwen3-32b',
    },
    // Groq's docs: logprobs, logit_bias and top_logprobs are not supported.
    unsupported: ['logprobs', 'top_logprobs', 'logit_bias'],
    hooks: {
      // Groq reports stream usage in `x_groq.usage` on the last chunk, not in `usage`.
      mapChunk(chunk) {
        const usage = (chunk.x_groq as { usage?: unknown } | undefined)?.usage;
        if ((chunk.usage !== undefined && chunk.usage !== null) || typeof usage !== 'object' || usage === null) return false;
        chunk.usage = usage as ChatChunk['usage'];
        return true;
      },
    },
  },
  {
    id: 'DeepInfra',
    label: 'DeepInfra',
    url: 'https://deepinfra.com',
    loginUrl: 'https://deepinfra.com/dash/api_keys',
    baseUrl: 'https://api.deepinfra.com/v1/openai',
    needsAuth: true,
    apiKeyEnv: ['DEEPINFRA_API_KEY', 'DEEPINFRA_TOKEN'],
    defaultModel: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
    models: [
      'meta-llama/Llama-3.3-70B-Instruct-Turbo',
      'meta-llama/Meta-Llama-3.1-8B-Instruct',
      'deepseek-ai/DeepSeek-R1',
      'deepseek-ai/DeepSeek-V3',
      'Qwen/Qwen2.5-72B-Instruct',
      'openai/gpt-oss-120b',
    ],
    aliases: {
      'llama-3.3-70b': 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
      'llama-3.1-8b': 'meta-llama/Meta-Llama-3.1-8B-Instruct',
      'deepseek-r1': 'deepseek-ai/DeepSeek-R1',
      'deepseek-v3': 'deepseek-ai/DeepSeek-V3',
      'qwen-2.5-72b': 'Qwen/Qwen2.5-72B-Instruct',
      'gpt-oss-120b': 'openai/gpt-oss-120b',
    },
  },
  {
    id: 'OpenRouter',
    label: 'OpenRouter',
    url: 'https://openrouter.ai',
    loginUrl: 'https://openrouter.ai/settings/keys',
    baseUrl: 'https://openrouter.ai/api/v1',
    needsAuth: true,
    apiKeyEnv: ['OPENROUTER_API_KEY'],
    defaultModel: 'openai/gpt-4o-mini',
    models: [
      'openai/gpt-4o-mini',
      'openai/gpt-4o',
      'anthropic/claude-sonnet-4.5',
      'google/gemini-2.5-flash',
      'meta-llama/llama-3.3-70b-instruct',
      'deepseek/deepseek-r1',
      'deepseek/deepseek-chat',
      'x-ai/grok-3-mini',
    ],
    visionModels: ['openai/gpt-4o-mini', 'openai/gpt-4o', 'anthropic/claude-sonnet-4.5', 'google/gemini-2.5-flash'],
    aliases: {
      'gpt-4o-mini': 'openai/gpt-4o-mini',
      'gpt-4o': 'openai/gpt-4o',
      'claude-sonnet-4.5': 'anthropic/claude-sonnet-4.5',
      'gemini-2.5-flash': 'google/gemini-2.5-flash',
      'llama-3.3-70b': 'meta-llama/llama-3.3-70b-instruct',
      'deepseek-r1': 'deepseek/deepseek-r1',
      'deepseek-v3': 'deepseek/deepseek-chat',
    },
  },
  {
    id: 'Together',
    label: 'Together AI',
    url: 'https://www.together.ai',
    loginUrl: 'https://api.together.ai/settings/api-keys',
    baseUrl: 'https://api.together.xyz/v1',
    needsAuth: true,
    apiKeyEnv: ['TOGETHER_API_KEY'],
    defaultModel: 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
    models: [
      'meta-llama/Llama-3.3-70B-Instruct-Turbo',
      'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo',
      'deepseek-ai/DeepSeek-R1',
      'deepseek-ai/DeepSeek-V3',
      'Qwen/Qwen2.5-72B-Instruct-Turbo',
      'openai/gpt-oss-120b',
    ],
    aliases: {
      'llama-3.3-70b': 'meta-llama/Llama-3.3-70B-Instruct-Turbo',
      'llama-3.1-8b': 'meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo',
      'deepseek-r1': 'deepseek-ai/DeepSeek-R1',
      'deepseek-v3': 'deepseek-ai/DeepSeek-V3',
      'qwen-2.5-72b': 'Qwen/Qwen2.5-72B-Instruct-Turbo',
      'gpt-oss-120b': 'openai/gpt-oss-120b',
    },
  },
  {
    id: 'xAI',
    label: 'xAI (Grok)',
    url: 'https://x.ai/api',
    loginUrl: 'https://console.x.ai',
    baseUrl: 'https://api.x.ai/v1',
    needsAuth: true,
    apiKeyEnv: ['XAI_API_KEY'],
    defaultModel: 'grok-3-mini',
    models: ['grok-4', 'grok-3', 'grok-3-mini'],
    visionModels: ['grok-4'],
  },
  {
    id: 'DeepSeek',
    label: 'DeepSeek',
    url: 'https://platform.deepseek.com',
    loginUrl: 'https://platform.deepseek.com/api_keys',
    baseUrl: 'https://api.deepseek.com/v1',
    needsAuth: true,
    apiKeyEnv: ['DEEPSEEK_API_KEY'],
    defaultModel: 'deepseek-chat',
    models: ['deepseek-chat', 'deepseek-reasoner'],
    aliases: { 'deepseek-v3': 'deepseek-chat', 'deepseek-r1': 'deepseek-reasoner' },
  },
  {
    id: 'Cerebras',
    label: 'Cerebras Inference',
    url: 'https://inference.cerebras.ai',
    loginUrl: 'https://cloud.cerebras.ai',
    baseUrl: 'https://api.cerebras.ai/v1',
    needsAuth: true,
    apiKeyEnv: ['CEREBRAS_API_KEY'],
    defaultModel: 'llama-3.3-70b',
    models: ['llama-3.3-70b', 'llama3.1-8b', 'qwen-3-32b', 'gpt-oss-120b'],
    aliases: { 'llama-3.1-8b': 'llama3.1-8b' },
    // Cerebras' OpenAI compatibility notes: these fields are not supported.
    unsupported: ['frequency_penalty', 'presence_penalty', 'logit_bias'],
  },
  {
    id: 'Mistral',
    label: 'Mistral AI',
    url: 'https://mistral.ai',
    loginUrl: 'https://console.mistral.ai/api-keys',
    baseUrl: 'https://api.mistral.ai/v1',
    needsAuth: true,
    apiKeyEnv: ['MISTRAL_API_KEY'],
    defaultModel: 'mistral-small-latest',
    models: ['mistral-large-latest', 'mistral-medium-latest', 'mistral-small-latest', 'codestral-latest', 'open-mistral-nemo', 'pixtral-large-latest'],
    visionModels: ['pixtral-large-latest', 'mistral-medium-latest', 'mistral-small-latest'],
    // Mistral rejects fields it does not know (422): these are dropped, and two are renamed.
    unsupported: ['logit_bias', 'logprobs', 'top_logprobs', 'user', 'reasoning_effort'],
    hooks: {
      mapRequest(body) {
        // Mistral names the seed `random_seed`, and knows only `max_tokens`.
        if (body.seed !== undefined) {
          body.random_seed = body.seed;
          delete body.seed;
        }
        if (body.max_completion_tokens !== undefined) {
          body.max_tokens ??= body.max_completion_tokens;
          delete body.max_completion_tokens;
        }
      },
    },
  },
  {
    id: 'Ollama',
    label: 'Ollama (local server)',
    url: 'https://ollama.com',
    loginUrl: null,
    baseUrl: 'http://127.0.0.1:11434/v1',
    needsAuth: false,
    defaultModel: 'llama3.2',
    models: ['llama3.2', 'llama3.1', 'qwen2.5', 'gemma3', 'mistral', 'deepseek-r1', 'gpt-oss'],
    visionModels: ['gemma3', 'llava'],
    optIn: true,
  },
  {
    id: 'LlamaCpp',
    label: 'llama.cpp server (local)',
    url: 'https://github.com/ggml-org/llama.cpp/tree/master/tools/server',
    loginUrl: null,
    baseUrl: 'http://127.0.0.1:8080/v1',
    needsAuth: false,
    defaultModel: 'default',
    models: [],
    optIn: true,
  },
];
