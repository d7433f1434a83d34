export { createGeminiProvider, geminiChatParams, geminiDeclaration, modelPath, type GeminiDeclaration, type GeminiProvider, type GeminiSettings } from './define.js';
export { toGeminiSchema } from './schema.js';
