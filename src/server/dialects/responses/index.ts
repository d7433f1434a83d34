/** OpenAI's Responses API entrance: POST /v1/responses, GET /v1/responses/{id}. */
export { createGetResponseRoute, createResponsesRoute } from './route.js';
export { ResponseStore, type ResponseRepository, type StoredResponse } from './store.js';
export { SharedResponseStore } from './shared-store.js';
