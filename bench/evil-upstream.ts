/**
 * The evil upstream of test/fakes/evil-upstream.ts as its own process, for the soak: each request
 * gets the next hostile behaviour in turn (endless stream, endless line, 100 MB JSON, trickle,
 * `choices: [null]`, 500, redirect, gzip). Prints its port on stdout; loopback only.
 *
 *   node --import tsx bench/evil-upstream.ts
 */
import { startEvilUpstream, type EvilMode } from '../test/fakes/evil-upstream.js';

const modes: EvilMode[] = ['endless-sse', 'endless-line', 'huge-json', 'trickle', 'null-choices', 'fail-500', 'redirect', 'gzip'];
let next = 0;
const upstream = await startEvilUpstream({
  mode: (req) => {
    const mode = modes[next++ % modes.length] as EvilMode;
    // An endless stream to a streaming client is a stream that never ends, by design (there is
    // no deadline on a stream that delivers): the soak's client would wait for ever.
    const streaming = typeof req.body === 'object' && req.body !== null && (req.body as { stream?: unknown }).stream === true;
    return streaming && mode === 'endless-sse' ? 'endless-line' : mode;
  },
});
// The soak runs for minutes: keep no per-request history.
setInterval(() => {
  upstream.requests.length = 0;
  upstream.responses.length = 0;
}, 5000).unref();
process.stdout.write(`${new URL(upstream.url).port}\n`);
process.on('SIGTERM', () => void upstream.stop().then(() => process.exit(0)));
