/**
 * The `interference` command line as a user runs it: the real binary (`node --import tsx
 * src/main.ts`) as a child process with a clean environment, against gateways started here on
 * port 0 whose upstreams are local fakes. Covers each client command's output, stdin and stdout
 * as pipes, the embedded model without a server (--local), and the exit codes: 0 done, 1 the
 * server could not be reached or answered with an error, 2 a bad command line.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { closedPortUrl, startOpenAICompatibleFake, type Fake } from './fakes/openai-compatible-fake.js';
import { FAKE_PNG, startOpenAIImagesFake, type OpenAIImagesFake } from './fakes/image-fakes.js';
import { repoRoot, startGateway, storiesModel, type Gateway } from './support/gateway.js';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

const REPLY = 'Streamed from the fake, piece by piece.';

interface RunOptions {
  env?: Record<string, string>;
  /** Piped to its stdin, which is closed either way. */
  input?: string;
}

/** Starts the CLI from the sources with a clean environment; `done` settles when it has exited. */
function start(args: string[], options: RunOptions = {}): { child: ChildProcessWithoutNullStreams; done: Promise<Run> } {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', INTERFERENCE_LOG: '0', ...options.env };
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/main.ts'), ...args], { cwd: repoRoot, env });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (text: string) => (stdout += text));
  child.stderr.setEncoding('utf8').on('data', (text: string) => (stderr += text));
  child.stdin.end(options.input ?? '');
  return { child, done: new Promise((resolve) => child.once('close', (code) => resolve({ code, stdout, stderr }))) };
}

function cli(args: string[], options: RunOptions = {}): Promise<Run> {
  return start(args, options).done;
}

/** One line on stderr prefixed `interference: `, no stack trace. */
function assertOneLineReason(run: Run, pattern: RegExp): void {
  assert.match(run.stderr, /^interference: [^\n]+\n$/, `stderr: ${run.stderr}`);
  assert.match(run.stderr, pattern);
}

describe('interference command line', () => {
  let dir: string;
  let groq: Fake;
  let images: OpenAIImagesFake;
  let gateway: Gateway;
  /** The client flags that point at `gateway`. */
  let at: string[];

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'interference-cli-test-'));
    groq = await startOpenAICompatibleFake({ apiKey: 'gsk_test', reply: REPLY });
    images = await startOpenAIImagesFake({ apiKey: 'sk-images' });
    gateway = await startGateway({
      env: {
        GROQ_BASE_URL: groq.url,
        GROQ_API_KEY: 'gsk_test',
        OPENAIAPI_BASE_URL: `${images.url}/v1`,
        OPENAI_API_KEY: 'sk-images',
        INTERFERENCE_RETRIES: '0',
      },
    });
    at = ['--url', gateway.url];
  });
  after(async () => {
    await gateway.close();
    await Promise.all([groq.close(), images.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  test('--help of the program and of each command: usage on stdout, exit 0', async () => {
    for (const command of [[], ['serve'], ['providers'], ['models'], ['chat'], ['image']]) {
      const run = await cli([...command, '--help']);
      assert.equal(run.code, 0, `${command.join(' ')}: ${run.stderr}`);
      assert.ok(run.stdout.startsWith(`Usage: interference ${command.length === 0 ? '[options]' : `${command[0]} [options]`}`), run.stdout);
      assert.equal(run.stderr, '');
    }
    const root = await cli(['--help']);
    for (const command of ['serve', 'providers', 'models', 'chat', 'image']) assert.match(root.stdout, new RegExp(`^  ${command} `, 'm'));
    assert.match((await cli(['chat', '--help'])).stdout, /--url <url>[\s\S]*INTERFERENCE_URL[\s\S]*--api-key <key>/);
  });

  test('providers: a table of id, configured, working and public', async () => {
    const run = await cli(['providers', ...at]);
    assert.equal(run.code, 0, run.stderr);
    const rows = run.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/\s{2,}/));
    assert.deepEqual(rows[0], ['ID', 'CONFIGURED', 'WORKING', 'PUBLIC']);
    const row = (id: string): string[] | undefined => rows.find((cells) => cells[0] === id);
    assert.deepEqual(row('Groq'), ['Groq', 'yes', 'yes', 'no']);
    assert.deepEqual(row('Mistral'), ['Mistral', 'no', 'no', 'no']);
    assert.deepEqual(row('PollinationsAI')?.[3], 'yes');
    assert.deepEqual(row('Local')?.[3], 'no');
    assert.doesNotMatch(run.stdout, /\x1b\[/, 'no colours on a pipe');
  });

  test("models: all of them with their type, or one provider's", async () => {
    const all = await cli(['models', ...at]);
    assert.equal(all.code, 0, all.stderr);
    assert.match(all.stdout, /^MODEL\s+TYPE\s+AVAILABLE\s+PROVIDERS\n/);
    assert.match(all.stdout, /^llama-3\.3-70b\s+chat\s+yes\s+\S*Groq/m);
    assert.match(all.stdout, /^flux\s+image\s/m);

    const groqOnly = await cli(['models', '--provider', 'Groq', ...at]);
    assert.equal(groqOnly.code, 0, groqOnly.stderr);
    const lines = groqOnly.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^MODEL\s+TYPE\s+AVAILABLE$/);
    assert.ok(
      lines.some((line) => /^llama-3\.3-70b-versatile\s+chat\s+yes$/.test(line)),
      groqOnly.stdout,
    );
    assert.ok(!lines.some((line) => line.startsWith('flux ')), 'no image models of other providers');
  });

  test('chat: the answer streams to stdout, exactly the upstream text; nothing else on a pipe', async () => {
    const before = groq.requests.length;
    const run = await cli(['chat', 'Say hello', '--provider', 'Groq', '--system', 'Be brief.', '--max-tokens', '64', ...at]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${REPLY}\n`);
    assert.equal(run.stderr, '', 'who answered is said on a terminal or with --verbose only');
    const sent = groq.requests.slice(before).find((request) => request.path.endsWith('/chat/completions'))?.body as Record<string, unknown>;
    assert.equal(sent.stream, true);
    assert.equal(sent.max_tokens, 64);
    assert.deepEqual(sent.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Say hello' },
    ]);

    const verbose = await cli(['chat', 'Say hello', '--provider', 'Groq', '--verbose', ...at]);
    assert.equal(verbose.code, 0, verbose.stderr);
    assert.equal(verbose.stdout, `${REPLY}\n`);
    assert.match(verbose.stderr, /^answered by Groq \(.+\)\n$/);
  });

  test('chat: the prompt comes from stdin when it is piped and no prompt is given', async () => {
    const before = groq.requests.length;
    const run = await cli(['chat', '--provider', 'Groq', ...at], { input: 'A prompt from a pipe\n' });
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, `${REPLY}\n`);
    const sent = groq.requests.slice(before).find((request) => request.path.endsWith('/chat/completions'))?.body as { messages: unknown };
    assert.deepEqual(sent.messages, [{ role: 'user', content: 'A prompt from a pipe\n' }]);

    const empty = await cli(['chat', '--provider', 'Groq', ...at], { input: '' });
    assert.equal(empty.code, 2);
    assertOneLineReason(empty, /the prompt is empty/);
  });

  test('chat --local: the embedded model answers without any server', async () => {
    const run = await cli(['chat', '--local', 'Once upon a time', '--max-tokens', '8', '--verbose', '--url', await closedPortUrl()], {
      env: {
        INTERFERENCE_LOCAL_MODEL: storiesModel,
        INTERFERENCE_LOCAL_THREADS: '1',
        INTERFERENCE_LOCAL_CONTEXT: '256',
        INTERFERENCE_MODELS_DIR: path.join(dir, 'models'),
      },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(run.stdout.trim().length > 0, 'some text');
    assert.ok(run.stdout.endsWith('\n'));
    assert.equal(run.stderr, 'answered by Local (stories260K)\n');

    const missing = await cli(['chat', '--local', 'Hello'], { env: { INTERFERENCE_LOCAL_MODEL: path.join(dir, 'missing.gguf') } });
    assert.equal(missing.code, 1);
    assertOneLineReason(missing, /model file not found/);
    assert.equal(missing.stdout, '');
  });

  test('image: writes the image file, refuses to overwrite it without --force', async () => {
    const file = path.join(dir, 'cat.png');
    const run = await cli(['image', 'a white cat', '-o', file, '--provider', 'OpenaiAPI', '--size', '1024x1024', ...at]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout, '');
    assert.deepEqual(readFileSync(file), FAKE_PNG);
    const sent = images.requests.at(-1)?.body as Record<string, unknown>;
    assert.equal(sent.size, '1024x1024');

    writeFileSync(file, 'mine');
    const refused = await cli(['image', 'a white cat', '-o', file, ...at]);
    assert.equal(refused.code, 2);
    assertOneLineReason(refused, /already exists; use --force/);
    assert.equal(readFileSync(file, 'utf8'), 'mine', 'the file is untouched');

    const forced = await cli(['image', 'a white cat', '-o', file, '--provider', 'OpenaiAPI', '--force', ...at]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(readFileSync(file), FAKE_PNG);

    const badSize = await cli(['image', 'a cat', '-o', path.join(dir, 'x.png'), '--size', 'big', ...at]);
    assert.equal(badSize.code, 2);
    assertOneLineReason(badSize, /--size: found "big"/);
    assert.ok(!existsSync(path.join(dir, 'x.png')));
  });

  test('no server: exit 1 and one line saying how to start it', async () => {
    const url = new URL(await closedPortUrl()).origin;
    for (const args of [['providers'], ['models'], ['chat', 'hi'], ['image', 'a cat', '-o', path.join(dir, 'never.png')]]) {
      const run = await cli([...args, '--url', url]);
      assert.equal(run.code, 1, `${args[0]}: ${run.stderr}`);
      assert.equal(run.stderr, `interference: cannot reach ${url}: connection refused; start it with \`interference serve\`\n`);
    }
    // INTERFERENCE_URL is the default of --url.
    const fromEnv = await cli(['providers'], { env: { INTERFERENCE_URL: url } });
    assert.equal(fromEnv.code, 1);
    assert.match(fromEnv.stderr, new RegExp(`cannot reach ${url}:`));
  });

  test("an HTTP error: exit 1 with the server's message and status", async () => {
    const models = await cli(['models', '--provider', 'Nope', ...at]);
    assert.equal(models.code, 1);
    assertOneLineReason(models, /Provider "Nope" not found\. \(HTTP 404\)/);

    const chat = await cli(['chat', 'hi', '--provider', 'Nope', ...at]);
    assert.equal(chat.code, 1);
    assertOneLineReason(chat, /"Nope".*\(HTTP 404\)/);
    assert.equal(chat.stdout, '');
  });

  test('an error event in the middle of the stream: the partial answer, then exit 1 with its message', async () => {
    const broken = await startOpenAICompatibleFake({ apiKey: 'gsk_broken', behaviour: { kind: 'stream-error-event' } });
    const brokenGateway = await startGateway({ env: { GROQ_BASE_URL: broken.url, GROQ_API_KEY: 'gsk_broken', INTERFERENCE_RETRIES: '0' } });
    try {
      const run = await cli(['chat', 'hi', '--provider', 'Groq', '--url', brokenGateway.url]);
      assert.equal(run.code, 1);
      assert.ok(run.stdout.length > 1 && run.stdout.endsWith('\n'), `the partial answer, its line ended: ${JSON.stringify(run.stdout)}`);
      assertOneLineReason(run, /Groq failed after the stream started/);
    } finally {
      await brokenGateway.close();
      await broken.close();
    }
  });

  test('serve with INTERFERENCE_METRICS_PORT: the banner names the metrics URL; that port in use is exit 1 naming it', async () => {
    const busy = new URL(gateway.url).port;
    const taken = await cli(['serve', '--port', '0'], {
      env: { INTERFERENCE_METRICS_PORT: busy, INTERFERENCE_LOCAL_MODEL: storiesModel, INTERFERENCE_IMAGES_DIR: path.join(dir, 'images') },
    });
    assert.equal(taken.code, 1);
    assertOneLineReason(
      taken,
      new RegExp(`^interference: the metrics port ${busy} on 127\\.0\\.0\\.1 is already in use; choose another with INTERFERENCE_METRICS_PORT\\.`),
    );
    const { child, done } = start(['serve', '--port', '0'], {
      env: { INTERFERENCE_METRICS_PORT: '0', INTERFERENCE_LOCAL_MODEL: storiesModel, INTERFERENCE_IMAGES_DIR: path.join(dir, 'images') },
    });
    let banner = '';
    child.stderr.on('data', (text: string) => (banner += text));
    const metricsUrl = await new Promise<string>((resolve) => {
      const check = (): void => {
        const match = /metrics: +(http:\/\/127\.0\.0\.1:\d+\/metrics) \(Prometheus; no gateway key on this port\)/.exec(banner);
        if (match) resolve(match[1] as string);
      };
      child.stderr.on('data', check);
    });
    const response = await fetch(metricsUrl);
    assert.equal(response.status, 200);
    assert.match(await response.text(), /^# HELP interference_requests_total /m);
    child.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  test('a bad command line: exit 2 with one reason and where the options are', async () => {
    const unknown = await cli(['providers', '--bogus', ...at]);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stderr, `interference: Unknown option '--bogus'\nRun "interference providers --help" for the options.\n`);

    const command = await cli(['chatt', 'hi']);
    assert.equal(command.code, 2);
    assert.match(command.stderr, /^interference: unknown command 'chatt'\n/);

    const tokens = await cli(['chat', 'hi', '--max-tokens', 'zero', ...at]);
    assert.equal(tokens.code, 2);
    assertOneLineReason(tokens, /--max-tokens: found "zero"/);

    const url = await cli(['providers', '--url', 'not a url']);
    assert.equal(url.code, 2);
    assertOneLineReason(url, /--url: found "not a url"/);

    const local = await cli(['chat', 'hi', '--local', '--provider', 'Groq']);
    assert.equal(local.code, 2);
    assertOneLineReason(local, /--local .* no --provider/);
  });

  test('Ctrl-C during chat: the request is aborted, the gateway cancels its upstream call, exit 130', async () => {
    const slow = await startOpenAICompatibleFake({
      apiKey: 'gsk_slow',
      reply: 'one two three four five six seven eight nine ten',
      behaviour: { kind: 'slow-stream', delayMs: 300 },
    });
    const slowGateway = await startGateway({ env: { GROQ_BASE_URL: slow.url, GROQ_API_KEY: 'gsk_slow', INTERFERENCE_RETRIES: '0' } });
    try {
      const { child, done } = start(['chat', 'count', '--provider', 'Groq', '--url', slowGateway.url]);
      await once(child.stdout, 'data'); // the answer has started
      child.kill('SIGINT');
      const run = await done;
      assert.equal(run.code, 130, run.stderr);
      assert.equal(run.stderr, 'interference: interrupted\n');
      assert.ok(!run.stdout.includes('ten'), 'stopped before the end');
      // The gateway noticed the client leave and closed its upstream connection.
      while (slow.closedConnections === 0) await sleep(20);
    } finally {
      await slowGateway.close();
      await slow.close();
    }
  });

  test('a gateway key: 401 without it (exit 1), accepted from --api-key or INTERFERENCE_API_KEY', async () => {
    const locked = await startGateway({ env: { INTERFERENCE_API_KEY: 'gw-secret-key', GROQ_BASE_URL: groq.url, GROQ_API_KEY: 'gsk_test' } });
    try {
      const refused = await cli(['providers', '--url', locked.url]);
      assert.equal(refused.code, 1);
      assertOneLineReason(refused, /HTTP 401; pass --api-key or set INTERFERENCE_API_KEY\)/);

      const wrong = await cli(['providers', '--url', locked.url, '--api-key', 'wrong']);
      assert.equal(wrong.code, 1);
      assertOneLineReason(wrong, /HTTP 401/);

      const flag = await cli(['chat', 'hi', '--provider', 'Groq', '--url', locked.url, '--api-key', 'gw-secret-key']);
      assert.equal(flag.code, 0, flag.stderr);
      assert.equal(flag.stdout, `${REPLY}\n`);

      const env = await cli(['providers', '--url', locked.url], { env: { INTERFERENCE_API_KEY: 'gw-secret-key' } });
      assert.equal(env.code, 0, env.stderr);
      assert.match(env.stdout, /^Groq\s+yes\s+yes\s+no$/m);
    } finally {
      await locked.close();
    }
  });
});
