/** OpenAI's Responses API entrance: POST /v1/responses, GET /v1/responses/{id}. */
export { createGetResponseRoute, createResponsesRoute } from './route.js';
export { ResponseStore, type StoredResponse } from './store.js';
