/** The Anthropic Messages API family: see define.ts (provider), request.ts (translation decisions). */
export { anthropicBaseUrl, anthropicDeclaration, createAnthropicProvider } from './define.js';
export type { AnthropicDeclaration, AnthropicProvider, AnthropicSettings } from './define.js';
export { anthropicChatParams, anthropicIgnoredParams, anthropicVersion, defaultMaxTokens, jsonToolName, toAnthropicRequest } from './request.js';
export type { AnthropicRequest } from './request.js';
