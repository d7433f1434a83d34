/**
 * The web chat page at /chat, end to end in a real browser: Debian's chromium driven by
 * playwright-core, against the gateway in process with fake upstreams (Groq's wire for chat,
 * Pollinations for images). No timed assertions: every wait is Playwright's auto-waiting or polling.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { FAKE_PNG, startPollinationsFake, type PollinationsFake } from './fakes/image-fakes.js';
import { startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { repoRoot, startGateway, type Gateway } from './support/gateway.js';
import { waitFor } from './support/wait.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const gatewayKey = 'chat-page-test-key';
/** Markdown with a code block, and HTML a hostile model might send: none of it may run. */
const reply = [
  'Hello from the fake upstream, streamed word by word, with **bold** and `inline code`.',
  '<img src=x onerror="window.__pwned = 1"> <script>window.__pwned = 2</script> [a link](javascript:window.__pwned=3)',
  '```js\nconst answer = 42;\n```',
].join('\n\n');
const answerText = 'Hello from the fake upstream, streamed word by word, with bold and inline code.';

// The callbacks passed to the page run in the browser. This project's TypeScript has no DOM library,
// so what they use of it is declared here (in this module only). They are functions, not strings:
// the page's policy forbids eval, which string predicates would need.
interface PageElement {
  textContent: string | null;
  naturalWidth?: number;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
  getElementById(id: string): unknown;
};
declare const window: { seen: string[]; __pwned?: number };
declare const localStorage: { getItem(key: string): string | null };
declare const MutationObserver: new (callback: () => void) => { observe(target: unknown, options: object): void };

const imageShown = (): boolean => (document.querySelector('img.generated')?.naturalWidth ?? 0) > 0;

describe('the chat page in a browser', () => {
  let chat: Fake;
  let pollinations: PollinationsFake;
  let gateway: Gateway;
  let browser: Browser;
  let page: Page;
  const shots = mkdtempSync(path.join(tmpdir(), 'interference-chat-shots-'));
  const requested: string[] = [];
  const violations: string[] = [];

  before(async () => {
    // CI installs chromium: its absence is a broken environment, not a reason to skip.
    if (!existsSync(chromiumPath)) {
      assert.fail(`Chromium is not installed at ${chromiumPath}: install Debian's "chromium" package (see .ci/run) or set CHROMIUM_PATH`);
    }
    chat = await startOpenAICompatibleFake({ reply, apiKey: 'gsk-test', behaviour: { kind: 'slow-stream', delayMs: 40 } });
    pollinations = await startPollinationsFake();
    gateway = await startGateway({
      env: {
        GROQ_BASE_URL: chat.url,
        GROQ_API_KEY: 'gsk-test',
        POLLINATIONSAI_BASE_URL: pollinations.url,
        INTERFERENCE_API_KEY: gatewayKey,
        INTERFERENCE_RETRIES: '0',
      },
    });
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    // Offline by construction: every request stays on the gateway, and the policy never has to refuse anything.
    page.on('request', (request) => requested.push(request.url()));
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
    });
  });

  after(async () => {
    await browser?.close();
    await gateway?.close();
    await Promise.all([chat?.close(), pollinations?.close()]);
    rmSync(shots, { recursive: true, force: true });
  });

  const lastAnswer = () => page.locator('.message.assistant').last();

  test('serves the page and its assets from an allow-list, with a strict policy, for GET and HEAD', async () => {
    const html = await fetch(`${gateway.url}/chat`);
    assert.equal(html.status, 200);
    assert.match(html.headers.get('content-type') ?? '', /^text\/html/);
    const csp = html.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.match(csp, /img-src 'self' data: blob:/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(html.headers.get('x-content-type-options'), 'nosniff');
    assert.ok(html.headers.get('cache-control'));
    assert.ok(html.headers.get('x-request-id'));
    assert.doesNotMatch(await html.text(), /<script>|<script [^>]*>[^<]/, 'no inline script');

    for (const asset of ['chat.js', 'marked.esm.js', 'purify.es.mjs']) {
      const response = await fetch(`${gateway.url}/chat/${asset}`);
      assert.equal(response.status, 200, asset);
      assert.match(response.headers.get('content-type') ?? '', /^text\/javascript/, asset);
    }
    const css = await fetch(`${gateway.url}/chat/chat.css`);
    assert.match(css.headers.get('content-type') ?? '', /^text\/css/);

    const head = await fetch(`${gateway.url}/chat/chat.js`, { method: 'HEAD' });
    assert.equal(head.status, 200);
    assert.ok(Number(head.headers.get('content-length')) > 0);
    assert.equal((await head.arrayBuffer()).byteLength, 0);

    const again = await fetch(`${gateway.url}/chat/chat.js`, { headers: { 'if-none-match': head.headers.get('etag') ?? '' } });
    assert.equal(again.status, 304);

    for (const name of ['..%2Fpackage.json', '..%2F..%2Fpackage.json', 'index.html', 'chat.js.map', '%2Fetc%2Fpasswd', 'constructor']) {
      const response = await fetch(`${gateway.url}/chat/${name}`);
      assert.equal(response.status, 404, name);
    }
  });

  test('asks for the gateway key once, in a form, and lists the providers', async () => {
    const response = await page.goto(`${gateway.url}/chat`);
    assert.equal(response?.status(), 200);
    await page.getByLabel('API key').fill(gatewayKey);
    await page.getByRole('button', { name: 'Save' }).click();
    // Configured providers are offered as ready; keyless public ones say so.
    const ready = page.locator('#provider optgroup[label="Ready"]');
    await ready.locator('option', { hasText: /^Groq$/ }).waitFor({ state: 'attached' });
    await ready.locator('option', { hasText: /^HuggingSpace \(public service\)$/ }).waitFor({ state: 'attached' });
    // Pollinations points at a fake on this machine here: not a public service then.
    await ready.locator('option', { hasText: /^PollinationsAI$/ }).waitFor({ state: 'attached' });
    await page.locator('#provider optgroup[label="Not configured"] option', { hasText: /^OpenRouter$/ }).waitFor({ state: 'attached' });
    assert.equal(await page.evaluate(() => localStorage.getItem('interference.gatewayKey')), gatewayKey);
  });

  test('streams the answer in token by token, then names the provider, model, tokens and time', async () => {
    await page.getByLabel('Provider').selectOption('Groq');
    await page.getByLabel('Model').selectOption('llama-3.3-70b-versatile');
    // Every text the answer shows, as the browser renders it.
    await page.evaluate(() => {
      window.seen = [];
      new MutationObserver(() => {
        const text = [...document.querySelectorAll('.message.assistant .body')].at(-1)?.textContent ?? '';
        if (text !== window.seen.at(-1)) window.seen.push(text);
      }).observe(document.getElementById('messages'), { childList: true, subtree: true, characterData: true });
    });
    await page.getByLabel('Message').fill('Hi there');
    await page.getByLabel('Message').press('Enter');

    // The line naming who answered appears once the answer is whole.
    const meta = lastAnswer().locator('.meta');
    await meta.waitFor();
    const line = await meta.textContent();
    assert.match(line ?? '', /Groq · llama-3\.3-70b-versatile · \d+ \+ \d+ tokens · \d+\.\d s/);

    const seen = await page.evaluate(() => window.seen);
    const final = seen[seen.length - 1] ?? '';
    assert.ok(final.startsWith(answerText), final);
    const partial = seen.filter((text) => text.length > 0 && text.length < final.length);
    assert.ok(partial.length >= 3, `the answer grew over several steps: ${JSON.stringify(seen)}`);
    for (const text of partial) assert.match(text, /^Hello/, 'each step shows the start of the answer');
    const sent = chat.requests.at(-1)?.body as { stream?: boolean; model?: string; messages?: unknown[] };
    assert.equal(sent.stream, true);
    assert.equal(sent.model, 'llama-3.3-70b-versatile');
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'Hi there' }]);
  });

  test("renders the model's Markdown with code blocks and sanitises its HTML", async () => {
    const answer = lastAnswer();
    assert.equal(await answer.locator('pre code').textContent(), 'const answer = 42;\n');
    assert.equal(await answer.locator('strong').textContent(), 'bold');
    assert.equal(await page.locator('#messages script').count(), 0);
    assert.equal(await page.locator('#messages [onerror]').count(), 0);
    assert.equal(await answer.locator('img').count(), 0, "the model's <img> is not inserted at all");
    assert.equal(await answer.getByText('a link').count(), 1);
    assert.equal(await answer.locator('a[href^="javascript"]').count(), 0, 'a javascript: link is disarmed');
    // Raw HTML in an answer is shown as the characters the model wrote.
    assert.match((await answer.textContent()) ?? '', /<script>window\.__pwned = 2<\/script>/);
    assert.equal(await page.evaluate(() => window.__pwned), undefined);
  });

  test('Stop ends the answer mid-stream and the gateway cancels the upstream request', async () => {
    chat.setBehaviour({ kind: 'stream-stall', afterChunks: 3 });
    const closedBefore = chat.closedConnections;
    await page.getByLabel('Message').fill('Tell me more');
    await page.getByRole('button', { name: 'Send' }).click();
    // The first three pieces arrive, then the upstream goes quiet: the partial answer is on screen.
    await page.waitForFunction(() => [...document.querySelectorAll('.message.assistant .body')].at(-1)?.textContent?.trim() === 'Hello from the');
    const stop = page.getByRole('button', { name: 'Stop' });
    assert.equal(await stop.isEnabled(), true);
    await stop.click();
    await lastAnswer().getByText('Stopped.').waitFor();
    await waitFor(() => chat.closedConnections > closedBefore, 'the upstream connection to close', 5000);
    assert.equal(await page.getByRole('button', { name: 'Send' }).isEnabled(), true);
    chat.setBehaviour({ kind: 'ok' });
  });

  test('an attached image goes to a vision model as an image_url part with a data URI', async () => {
    await page.getByLabel('Model').selectOption('meta-llama/llama-4-scout-17b-16e-instruct');
    await page.getByLabel('Attach image').setInputFiles({ name: 'pixel.png', mimeType: 'image/png', buffer: FAKE_PNG });
    await page.getByRole('img', { name: 'Attached image' }).waitFor();
    await page.getByLabel('Message').fill('What is in this picture?');
    await page.getByLabel('Message').press('Enter');
    await lastAnswer().locator('.meta').waitFor();
    const sent = chat.requests.at(-1)?.body as { messages: Array<{ role: string; content: unknown }> };
    assert.deepEqual(sent.messages.at(-1), {
      role: 'user',
      content: [
        { type: 'text', text: 'What is in this picture?' },
        { type: 'image_url', image_url: { url: `data:image/png;base64,${FAKE_PNG.toString('base64')}` } },
      ],
    });
    // The stopped turn is history too: what the person saw of it.
    assert.deepEqual(sent.messages.at(-2), { role: 'assistant', content: 'Hello from the' });
  });

  test('an upstream failure reads as the error message with the attempts made', async () => {
    chat.setBehaviour({ kind: 'status', status: 503 });
    await page.getByLabel('Message').fill('Are you there?');
    await page.getByRole('button', { name: 'Send' }).click();
    const alert = lastAnswer().getByRole('alert');
    await alert.waitFor();
    // e.g. "Groq: HTTP 503: The engine is currently overloaded. …" and "Attempts: Groq (server)"
    assert.match((await alert.textContent()) ?? '', /^Groq: HTTP 503: .+\nAttempts: Groq \(server\)$/s);
    chat.setBehaviour({ kind: 'ok' });
  });

  test('generates an image with an image model and shows it inline', async () => {
    await page.getByLabel('Provider').selectOption('PollinationsAI');
    await page.getByLabel('Model').selectOption('flux');
    await page.getByLabel('Message').fill('a lighthouse at dusk');
    await page.getByRole('button', { name: 'Send' }).click();
    const image = lastAnswer().locator('img.generated');
    await image.waitFor();
    await page.waitForFunction(imageShown);
    assert.match((await lastAnswer().locator('.meta').textContent()) ?? '', /PollinationsAI · flux/);
    const prompt = pollinations.requests.find((request) => request.path.startsWith('/prompt/'));
    assert.equal(prompt?.path, '/prompt/a lighthouse at dusk');
  });

  test('a reload restores the conversation; screenshots at desktop and phone widths', async () => {
    await page.reload();
    await page.getByRole('button', { name: 'Hi there', exact: true }).waitFor();
    await page.locator('.message.user', { hasText: 'Tell me more' }).waitFor();
    await page.getByText('Stopped.').waitFor();
    await page.waitForFunction(imageShown);
    assert.equal(await page.getByLabel('Provider').inputValue(), 'PollinationsAI');
    await page.getByLabel('Message').fill('/image a red kite over the sea');
    await snap('chat-desktop.png');

    await page.setViewportSize({ width: 390, height: 844 });
    // On a phone the conversation list is behind the "Chats" button.
    assert.equal(await page.getByRole('button', { name: 'New chat' }).isVisible(), false);
    await page.getByRole('button', { name: 'Chats' }).click();
    await page.getByRole('button', { name: 'New chat' }).waitFor({ state: 'visible' });
    await page.keyboard.press('Escape');
    await page.getByRole('button', { name: 'New chat' }).waitFor({ state: 'hidden' });
    assert.equal(await page.getByRole('button', { name: 'Send' }).isVisible(), true);
    await snap('chat-phone.png');
  });

  test('conversations: new, rename and delete, kept across reloads', async () => {
    await page.setViewportSize({ width: 1280, height: 800 });
    await page.getByRole('button', { name: 'New chat' }).click();
    await page.getByRole('button', { name: 'Rename New chat' }).click();
    await page.getByLabel('Conversation name').fill('Scratch');
    await page.getByLabel('Conversation name').press('Enter');
    await page.getByRole('button', { name: 'Scratch', exact: true }).waitFor();
    await page.reload();
    await page.getByRole('button', { name: 'Scratch', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Delete Scratch' }).click();
    await page.getByRole('button', { name: 'Scratch', exact: true }).waitFor({ state: 'detached' });
    await page.getByRole('button', { name: 'Hi there', exact: true }).waitFor();
  });

  test('the page fetched nothing from elsewhere and broke none of its policy', () => {
    assert.ok(requested.length > 10);
    assert.deepEqual(
      requested.filter((url) => !url.startsWith(`${gateway.url}/`) && !url.startsWith('data:') && !url.startsWith('blob:')),
      [],
    );
    assert.deepEqual(violations, []);
  });

  async function snap(name: string): Promise<void> {
    await page.screenshot({ path: path.join(shots, name) });
    if (process.env.INTERFERENCE_UPDATE_SCREENSHOTS === '1') {
      mkdirSync(path.join(repoRoot, 'docs'), { recursive: true });
      await page.screenshot({ path: path.join(repoRoot, 'docs', name) });
    }
  }
});
