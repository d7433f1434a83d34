import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../../core/errors.js';
import type { RequestContext } from '../context.js';

export interface ApiDocs {
  /** GET /openapi.json: the OpenAPI 3.1 document of the gateway's own API. */
  openapi(req: IncomingMessage, res: ServerResponse, context: RequestContext): void;
  /** GET /docs (the page) and GET /docs/{asset}: the document rendered, every asset served locally. */
  docs(req: IncomingMessage, res: ServerResponse, context: RequestContext, asset: string): Promise<void>;
}

/** PLACEHOLDER: being built. */
export function createApiDocs(_options: { version: string }): ApiDocs {
  return {
    openapi() {
      throw new ApiError(404, 'the OpenAPI document is not built yet', { code: 'route_not_found' });
    },
    async docs() {
      throw new ApiError(404, 'the API docs are not built yet', { code: 'route_not_found' });
    },
  };
}
