/** The Google Gemini API family: see define.ts (provider), request.ts / response.ts (translation decisions), schema.ts (JSON Schema subset). */
export { createGeminiProvider, geminiBaseUrl, geminiChatParams, geminiDeclaration, modelPath } from './define.js';
export type { GeminiDeclaration, GeminiProvider, GeminiSettings } from './define.js';
export { skipSignature, toGeminiRequest } from './request.js';
export type { GeminiRequest } from './request.js';
export { toGeminiSchema } from './schema.js';
