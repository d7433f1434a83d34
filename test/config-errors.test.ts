/**
 * Strict configuration, as a user meets it: the real command line (`src/main.ts`) with broken
 * config files and environments. Each case must stop the start with exit code 2 and one clear
 * line per problem (where, what was found, what is expected), never a stack trace; the command
 * line's own flags (--help, --version, --check-config, --port) behave like a real service's.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { repoRoot, storiesModel } from './support/gateway.js';
import { listenOnLoopback } from './support/loopback.js';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** tsx resolved from the repository, since each run has a folder of its own as its working directory. */
const tsxLoader = import.meta.resolve('tsx');
const dirs: string[] = [];
after(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Runs the CLI in a fresh folder holding `file` as interference.config.json (when given). */
function cli(args: string[], options: { file?: unknown; env?: Record<string, string> } = {}): Promise<Run> {
  const dir = mkdtempSync(path.join(tmpdir(), 'interference-cli-'));
  dirs.push(dir);
  if (options.file !== undefined) {
    writeFileSync(path.join(dir, 'interference.config.json'), typeof options.file === 'string' ? options.file : JSON.stringify(options.file));
  }
  const env = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    PORT: '0',
    INTERFERENCE_LOG: '0',
    INTERFERENCE_LOCAL_MODEL: storiesModel,
    INTERFERENCE_MODELS_DIR: path.join(dir, 'models'),
    ...options.env,
  };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', tsxLoader, path.join(repoRoot, 'src/main.ts'), ...args],
      { cwd: dir, env, timeout: 30_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : 1;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs `jobs` with at most `width` at once (each is a Node process: the machine has 2 cores). */
async function pooled<T>(jobs: Array<() => Promise<T>>, width = 4): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      while (next < jobs.length) {
        const index = next++;
        results[index] = await (jobs[index] as () => Promise<T>)();
      }
    }),
  );
  return results;
}

interface BrokenCase {
  name: string;
  file?: unknown;
  env?: Record<string, string>;
  args?: string[];
  /** Each must appear in stderr. */
  says: Array<string | RegExp>;
}

const broken: BrokenCase[] = [
  { name: 'a typo at the top level', file: { provider: [] }, says: ['provider: found an unknown key', '"providers"?'] },
  { name: 'providers is not an array', file: { providers: { id: 'Groq' } }, says: ['providers: found {"id":"Groq"}', 'expected an array of provider entries'] },
  { name: 'a provider without an id', file: { providers: [{ apiKey: 'k' }] }, says: ['providers[0].id: found nothing', 'expected a provider id'] },
  { name: 'an id with a space', file: { providers: [{ id: 'my provider' }] }, says: ['providers[0].id: found "my provider"', 'ASCII letters'] },
  {
    name: 'a base URL without a scheme',
    file: { providers: [{ id: 'Ollama', baseUrl: 'localhost:11434/v1' }] },
    says: ['providers[0].baseUrl: found "localhost:11434/v1"', 'absolute http(s) URL'],
  },
  {
    name: 'an unknown api',
    file: { providers: [{ id: 'Mine', api: 'grpc', baseUrl: 'http://127.0.0.1:9/v1' }] },
    says: ['providers[0].api: found "grpc"', 'one of "openai"'],
  },
  {
    name: 'duplicate ids',
    file: {
      providers: [
        { id: 'Groq', apiKey: 'a' },
        { id: 'groq', apiKey: 'b' },
      ],
    },
    says: ['providers[1].id: found "groq"', 'not used before'],
  },
  {
    name: 'models as a string',
    file: { providers: [{ id: 'Ollama', models: 'llama3' }] },
    says: ['providers[0].models: found "llama3"', 'an array of model ids'],
  },
  { name: 'a timeout as text', file: { timeouts: { connectMs: '10s' } }, says: ['timeouts.connectMs: found "10s"', 'milliseconds'] },
  { name: 'an unknown timeout', file: { timeouts: { connect: 1000 } }, says: ['timeouts.connect: found an unknown key', '"connectMs"?'] },
  { name: 'a file that is not JSON', file: '{oops', says: ['(the whole file): found text that is not JSON', 'expected a JSON object'] },
  { name: 'a top-level array', file: [], says: ['(top level): found []', 'expected a JSON object'] },
  {
    name: 'a new id without "api"',
    file: { providers: [{ id: 'MyLab', baseUrl: 'http://127.0.0.1:9/v1' }] },
    says: ['providers[0].id: found "MyLab", which is not a built-in provider', '"api" ("openai"'],
  },
  {
    name: 'a custom provider without a base URL',
    file: { providers: [{ id: 'MyLab', api: 'openai' }] },
    says: ['providers[0].baseUrl: found nothing', 'MYLAB_BASE_URL'],
  },
  {
    name: 'an origin with a path',
    file: { corsOrigins: ['https://app.example/chat'] },
    says: ['corsOrigins[0]: found "https://app.example/chat"', 'an origin'],
  },
  { name: 'PORT as a word', env: { PORT: 'eighty' }, says: ['environment: PORT: found "eighty"', 'a whole number from 0 to 65535'] },
  { name: 'negative retries', env: { INTERFERENCE_RETRIES: '-1' }, says: ['INTERFERENCE_RETRIES: found "-1"', 'from 0 to 10'] },
  {
    name: 'a base URL variable without a scheme',
    env: { GROQ_BASE_URL: 'api.groq.com/openai/v1' },
    says: ['environment: GROQ_BASE_URL: found "api.groq.com/openai/v1"', 'absolute http(s) URL'],
  },
  {
    name: 'an on/off setting as "maybe"',
    env: { INTERFERENCE_PUBLIC_PROVIDERS: 'maybe' },
    says: ['INTERFERENCE_PUBLIC_PROVIDERS: found "maybe"', 'on or off'],
  },
  {
    name: 'a public URL without a scheme',
    env: { INTERFERENCE_PUBLIC_URL: 'gw.example.com' },
    says: ['INTERFERENCE_PUBLIC_URL: found "gw.example.com"', 'absolute http(s) URL'],
  },
  {
    name: 'a config path that does not exist',
    env: { INTERFERENCE_CONFIG: '/nonexistent/interference.json' },
    says: ['INTERFERENCE_CONFIG points at /nonexistent/interference.json, which does not exist'],
  },
  {
    name: 'several problems at once, file and environment',
    file: { provider: [], timeouts: { idleMs: 0 } },
    env: { INTERFERENCE_MAX_CONCURRENT: 'lots' },
    says: ['the configuration has 3 problems', 'provider: found an unknown key', 'timeouts.idleMs: found 0', 'INTERFERENCE_MAX_CONCURRENT: found "lots"'],
  },
  { name: 'an unknown flag', args: ['--prot', '8080'], says: ["Unknown option '--prot'", 'interference --help'] },
  { name: 'a port flag that is not a number', args: ['--port', 'http'], says: ['--port: found "http"; expected a whole number from 0 to 65535'] },
];

describe('strict configuration at start', () => {
  test(`${broken.length} broken configurations: exit code 2, one clear line per problem, no stack trace`, async () => {
    const runs = await pooled(broken.map((entry) => () => cli(entry.args ?? [], { file: entry.file, env: entry.env ?? {} })));
    const failures: string[] = [];
    broken.forEach((entry, index) => {
      const run = runs[index] as Run;
      const problems: string[] = [];
      if (run.code !== 2) problems.push(`exit code ${run.code}`);
      for (const expected of entry.says) {
        const found = typeof expected === 'string' ? run.stderr.includes(expected) : expected.test(run.stderr);
        if (!found) problems.push(`stderr lacks ${JSON.stringify(String(expected))}`);
      }
      if (/\n\s+at [\w.<>]+ \(|node:internal/.test(run.stderr)) problems.push('a stack trace');
      if (!run.stderr.startsWith('interference: ')) problems.push('does not start with "interference: "');
      if (problems.length > 0) failures.push(`${entry.name}: ${problems.join(', ')}\n    stderr: ${run.stderr.trim().slice(0, 600)}`);
    });
    assert.deepEqual(failures, []);
  });

  test('--help and --version answer and exit 0', async () => {
    const [help, version] = await pooled([() => cli(['--help']), () => cli(['-v'])]);
    assert.equal(help?.code, 0);
    assert.match(help?.stdout ?? '', /Usage: interference \[options\]/);
    assert.match(help?.stdout ?? '', /--check-config/);
    assert.equal(version?.code, 0);
    assert.match(version?.stdout ?? '', /^\d+\.\d+\.\d+\n$/);
  });

  test('--check-config prints the resolved configuration with every key masked, and exits 0', async () => {
    const key = 'gsk_canary_0123456789abcdef';
    const run = await cli(['--check-config', '--port', '4242'], {
      file: { providers: [{ id: 'Groq', apiKey: key }] },
      env: { OPENAI_API_KEY: 'sk-short', INTERFERENCE_API_KEY: 'gateway-secret-key-123456' },
    });
    assert.equal(run.code, 0, run.stderr);
    assert.ok(!run.stdout.includes(key) && !run.stdout.includes('sk-short') && !run.stdout.includes('gateway-secret-key-123456'), 'no key in clear');
    const resolved = JSON.parse(run.stdout) as { port: number; gatewayKey: string; providers: Array<{ id: string; key: string | null; configured: boolean }> };
    assert.equal(resolved.port, 4242);
    assert.equal(resolved.gatewayKey, 'gat…3456');
    const groq = resolved.providers.find((entry) => entry.id === 'Groq');
    assert.deepEqual([groq?.key, groq?.configured], ['gsk…cdef', true]);
    assert.equal(resolved.providers.find((entry) => entry.id === 'OpenaiAPI')?.key, '****');
  });

  test('a busy port is one line with the fix, exit code 1', async () => {
    const blocker = createServer();
    const port = await listenOnLoopback(blocker);
    try {
      const run = await cli(['--port', String(port)]);
      assert.equal(run.code, 1);
      assert.match(run.stderr, new RegExp(`^interference: port ${port} on 127.0.0.1 is already in use .*--port`));
      assert.doesNotMatch(run.stderr, /\n\s+at /);
    } finally {
      blocker.close();
    }
  });
});
