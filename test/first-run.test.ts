/**
 * The first ten minutes, as a new user meets them: a production install (`npm ci --omit=dev` in a
 * copy of the repository: no dev dependencies, the build done once by `prepare`), then the built
 * server started with no configuration, no network (the model download points at a closed
 * loopback port) and no cached model. The banner must say truthfully where prompts go; the first
 * answer must name the cause (the model cannot be downloaded, from where, what to do); the second
 * must still name it, and suggest nothing that cannot answer. Then the same install serves the
 * tiny model when pointed at it.
 */
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFileSync, statSync, existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { closedPortUrl } from './fakes/openai-compatible-fake.js';
import { repoRoot, storiesModel } from './support/gateway.js';
import { postJson } from './support/http.js';

const run = promisify(execFile);

interface Started {
  child: ChildProcess;
  url: string;
  banner: string;
  stop(): Promise<void>;
}

/** Starts `node dist/src/main.js` in `dir` and waits for the whole banner (it ends with the embedded model's line). */
async function startBuilt(dir: string, env: Record<string, string>): Promise<Started> {
  const child = spawn(process.execPath, ['dist/src/main.js', '--port', '0'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  const banner = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no banner within 20 s: ${text}`)), 20_000);
    child.stderr?.on('data', (data: Buffer) => {
      text += data.toString();
      if (/embedded model: .*\n/.test(text)) {
        clearTimeout(timer);
        resolve(text);
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`exited (${code}): ${text}`));
    });
  });
  const url = /listening on (http:\/\/[^\s/]+)\/v1/.exec(banner)?.[1];
  assert.ok(url, banner);
  return {
    child,
    url,
    banner,
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

describe('first run: a production install, no configuration, no network, no cached model', () => {
  let dir: string;
  let home: string;
  let closedEndpoint: string;

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'interference-install-'));
    home = mkdtempSync(path.join(tmpdir(), 'interference-home-'));
    // The project's own files (tracked, and new ones not ignored), as a clone would have them.
    const { stdout } = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: repoRoot, maxBuffer: 16 << 20 });
    for (const file of stdout.split('\0').filter((name) => name !== '' && existsSync(path.join(repoRoot, name)))) {
      mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
      copyFileSync(path.join(repoRoot, file), path.join(dir, file));
    }
    await run('npm', ['ci', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund'], { cwd: dir, timeout: 300_000, maxBuffer: 64 << 20 });
    closedEndpoint = `${(await closedPortUrl()).replace(/\/v1$/, '')}/`;
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(home, { recursive: true, force: true });
  });

  test('the install has no dev dependencies and was built once, at install', () => {
    assert.ok(existsSync(path.join(dir, 'dist/src/main.js')), 'prepare built dist/');
    for (const dev of ['tsx', 'fast-check', 'autocannon', '@portkey-ai/gateway'])
      assert.ok(!existsSync(path.join(dir, 'node_modules', dev)), `${dev} is a dev dependency`);
  });

  test('the `interference` command runs from the install (its file is executable)', async () => {
    // A git clone runs the bin file itself (`sh: interference: Permission denied` when it is not executable).
    assert.notEqual(statSync(path.join(dir, 'dist/src/main.js')).mode & 0o111, 0, 'dist/src/main.js is executable');
    const { stdout } = await run('npx', ['interference', '--version'], { cwd: dir, timeout: 60_000 });
    assert.match(stdout, /^\d+\.\d+\.\d+\n$/);
  });

  test('the banner says where prompts can go, truthfully', async () => {
    const server = await startBuilt(dir, { HOME: home, HF_ENDPOINT: closedEndpoint });
    try {
      const { banner } = server;
      assert.match(banner, /providers with keys: +none yet/);
      assert.match(
        banner,
        /public, no key: +PollinationsAI \(text\.pollinations\.ai, image\.pollinations\.ai\), HuggingSpace \(\*\.hf\.space\): public services .*INTERFERENCE_PUBLIC_PROVIDERS=off/,
      );
      assert.match(banner, /local servers: +Ollama at http:\/\/127\.0\.0\.1:11434\/v1: (not answering|answered)/);
      assert.match(
        banner,
        new RegExp(
          `embedded model: +Local, hf:bartowski/SmolLM2-135M-Instruct-GGUF:Q8_0, not cached: downloaded on first use from ${closedEndpoint.replace(/[.]/g, '\\.')} \\(about 145 MB\\)`,
        ),
      );
      assert.doesNotMatch(banner, /Ready providers/);
    } finally {
      await server.stop();
    }
  });

  test('with public providers off: the first answer names the cause, the second still does and suggests nothing that cannot answer', async () => {
    const server = await startBuilt(dir, { HOME: home, HF_ENDPOINT: closedEndpoint, INTERFERENCE_PUBLIC_PROVIDERS: 'off' });
    try {
      assert.match(server.banner, /public, no key: +off \(INTERFERENCE_PUBLIC_PROVIDERS=off\): PollinationsAI, HuggingSpace refused/);
      const ask = () => postJson(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Hello' }] });
      const first = await ask();
      const firstBody = (await first.json()) as { error: { message: string; code: string } };
      assert.equal(first.status, 503, JSON.stringify(firstBody));
      assert.match(firstBody.error.message, new RegExp(`could not be downloaded from ${closedEndpoint.replace(/[.]/g, '\\.')}.*INTERFERENCE_LOCAL_MODEL`));
      const second = await ask();
      const secondBody = (await second.json()) as { error: { message: string } };
      assert.equal(second.status, 404);
      assert.match(secondBody.error.message, /Local: the embedded model hf:bartowski\/SmolLM2-135M-Instruct-GGUF:Q8_0 could not be downloaded/);
      for (const cannot of ['PollinationsAI', 'Ollama', 'LlamaCpp'])
        assert.ok(!secondBody.error.message.includes(cannot), `suggests ${cannot}: ${secondBody.error.message}`);
      // A named public service is refused with the reason, before any prompt leaves.
      const named = await postJson(`${server.url}/v1/chat/completions`, { provider: 'PollinationsAI', messages: [{ role: 'user', content: 'Hello' }] });
      assert.equal(named.status, 503);
      assert.match(((await named.json()) as { error: { message: string } }).error.message, /public providers are turned off/);
    } finally {
      await server.stop();
    }
  });

  test('the same install answers with the tiny model when pointed at it', async () => {
    const server = await startBuilt(dir, { HOME: home, INTERFERENCE_LOCAL_MODEL: storiesModel, INTERFERENCE_LOCAL_CONTEXT: '256' });
    try {
      assert.match(server.banner, new RegExp(`embedded model: +Local, ${storiesModel.replace(/[.]/g, '\\.')} \\(1\\.\\d MB\\)`));
      const response = await postJson(`${server.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8 });
      assert.equal(response.status, 200);
      assert.equal(response.headers.get('x-interference-provider'), 'Local');
    } finally {
      await server.stop();
    }
  });
});
