import type { IncomingMessage, ServerResponse } from 'node:http';
import { ApiError } from '../../core/errors.js';
import type { RequestContext } from '../context.js';

/** GET /chat (the page) and GET /chat/{asset} (its scripts, styles and vendored libraries). PLACEHOLDER: being built. */
export function createChatPage(): (req: IncomingMessage, res: ServerResponse, context: RequestContext, asset: string) => Promise<void> {
  return async () => {
    throw new ApiError(404, 'the chat page is not built yet', { code: 'route_not_found' });
  };
}
