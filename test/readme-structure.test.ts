/**
 * The README stays true to the code it describes: client excerpts are verbatim lines of the tested
 * programs, the banner and `--help` shown are what the program prints, the strict-configuration and
 * busy-port messages are the real ones, every setting the code reads is documented, and every link
 * and anchor leads somewhere. (The runnable examples are test/readme-examples.test.ts.)
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { banner } from '../src/banner.js';
import { parseConfigFile } from '../src/config-file.js';
import { loadConfig } from '../src/config.js';
import { closeAgents } from '../src/core/http.js';
import { buildRegistry } from '../src/providers/index.js';
import { repoRoot } from './support/gateway.js';
import { listenOnLoopback } from './support/loopback.js';

const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');

/** Fenced blocks right after `<!-- KIND: name -->`, in order. */
function tagged(markdown: string, kind: string): Array<{ name: string; text: string }> {
  const blocks: Array<{ name: string; text: string }> = [];
  for (const match of markdown.matchAll(/<!-- (\w+): (.+?) -->\n```\w*\n([\s\S]*?)```/g)) {
    if (match[1] === kind) blocks.push({ name: match[2] as string, text: match[3] as string });
  }
  return blocks;
}

function output(name: string): string {
  const block = tagged(readme, 'output').find((b) => b.name === name);
  assert.ok(block, `README has no <!-- output: ${name} --> block`);
  return block.text;
}

/** Runs the CLI from the sources; resolves with its exit code and output, never rejects. */
function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'src/main.ts'), ...args],
      { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', INTERFERENCE_LOG: '0', ...env }, timeout: 30_000 },
      (error, stdout, stderr) => resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr }),
    );
  });
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as hyphens. */
const slug = (heading: string): string =>
  heading
    .trim()
    .toLowerCase()
    .replace(/[^\w\- ]/g, '')
    .replace(/ /g, '-');

describe('README structure', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'interference-readme-'));
  after(async () => {
    rmSync(dir, { recursive: true, force: true });
    await closeAgents();
  });

  test('each client excerpt is verbatim lines of the tested program it names', () => {
    const excerpts = tagged(readme, 'excerpt');
    const files = new Set(excerpts.map((e) => e.name));
    for (const file of ['openai-typed.ts', 'openai-augmented.ts', 'vercel-ai.ts', 'langchain.ts', 'openai_extra_body.py', 'requests_provider.py']) {
      assert.ok(files.has(`test/clients/${file}`), `README has no excerpt of test/clients/${file}`);
    }
    for (const { name, text } of excerpts) {
      assert.match(name, /^test\/clients\/[\w.-]+$/, `excerpts come from the tested client programs: ${name}`);
      const file = path.join(repoRoot, name);
      assert.ok(existsSync(file), `${name} does not exist`);
      assert.ok(text.trim() !== '', `an empty excerpt of ${name}`);
      assert.ok(`\n${readFileSync(file, 'utf8')}`.includes(`\n${text}`), `this excerpt is not verbatim lines of ${name}:\n${text}`);
    }
  });

  test('the banner shown is what a start with nothing configured prints', async () => {
    const config = loadConfig({ INTERFERENCE_MODELS_DIR: '/home/you/.cache/interference/models' }, dir);
    const printed = await banner(buildRegistry(config), config, 'http://127.0.0.1:1337', '0.1.0');
    // Whether something answers at Ollama's or llama.cpp's address depends on the machine.
    const normal = (text: string): string =>
      text
        .replace(/^Interference \S+ listening/m, 'Interference VERSION listening')
        .replace(/: (not answering \([^)]*\)|answered(?: with HTTP \d+)?)/g, ': PROBE')
        .trimEnd();
    assert.equal(normal(output('banner')), normal(printed));
  });

  test('the --help shown is what the program prints', async () => {
    const help = await cli(['--help']);
    assert.equal(help.code, 0, help.stderr);
    assert.equal(output('interference --help'), help.stdout);
  });

  test('the strict-configuration message shown is the real one, with exit code 2', async () => {
    const file = path.join(dir, 'bad.json');
    writeFileSync(file, JSON.stringify({ providers: [{ id: 'Ollama', baseUrl: '127.0.0.1:11434' }], timeout: { connectMs: 5 } }));
    const result = await cli(['--config', file, '--check-config']);
    assert.equal(result.code, 2, result.stderr);
    assert.equal(output('bad-config'), result.stderr.replaceAll(file, '/srv/gw/interference.config.json'));
  });

  test('the busy-port message shown is the real one, with exit code 1', async () => {
    const busy: Server = createServer();
    const port = await listenOnLoopback(busy);
    const empty = path.join(dir, 'empty.json');
    writeFileSync(empty, '{}');
    try {
      const result = await cli(['--config', empty, '--port', String(port)]);
      assert.equal(result.code, 1, result.stderr);
      const message = result.stderr.trim().replace(`port ${port} `, 'port 1337 ');
      assert.ok(readme.includes(message), `README should show: ${message}`);
    } finally {
      busy.close();
    }
  });

  test('every environment variable the configuration reads is documented', () => {
    const source = readFileSync(path.join(repoRoot, 'src/config.ts'), 'utf8');
    const names = new Set([...source.matchAll(/(?:env\.|read\.\w+\(')([A-Z][A-Z0-9_]+)/g)].map((m) => m[1] as string));
    assert.ok(names.has('INTERFERENCE_PUBLIC_PROVIDERS') && names.has('PORT'), `found ${[...names].join(', ')}`);
    for (const name of names) assert.ok(readme.includes(`\`${name}\``), `README does not document ${name}`);
  });

  test('every config file key is documented', () => {
    // The schema names its keys when it meets one it does not know.
    const knownKeys = (value: unknown): string[] => {
      const parsed = parseConfigFile('test', value);
      assert.ok('problems' in parsed);
      const expected = parsed.problems[0]?.expected ?? '';
      const list = /[Kk]nown keys(?: here)?: (.+)$/.exec(expected)?.[1];
      assert.ok(list !== undefined, `no list of known keys in: ${expected}`);
      return list.split(', ');
    };
    const keys = [
      ...knownKeys({ zzzUnknown: 1 }),
      ...knownKeys({ timeouts: { zzzUnknown: 1 } }),
      ...knownKeys({ limits: { zzzUnknown: 1 } }),
      ...knownKeys({ providers: [{ id: 'X', zzzUnknown: 1 }] }),
    ];
    assert.ok(keys.includes('publicProviders') && keys.includes('bodyMs') && keys.includes('baseUrl'), keys.join(', '));
    for (const key of keys) assert.ok(readme.includes(`\`${key}\``), `README does not document the config key ${key}`);
  });

  test('every link and anchor in README.md and bench/README.md leads somewhere', () => {
    for (const doc of ['README.md', 'bench/README.md']) {
      const text = readFileSync(path.join(repoRoot, doc), 'utf8');
      const anchors = new Set([...text.matchAll(/^#{1,6} (.+)$/gm)].map((m) => slug(m[1] as string)));
      for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
        if (target === undefined || /^https?:/.test(target)) continue;
        if (target.startsWith('#')) {
          assert.ok(anchors.has(target.slice(1)), `${doc}: no heading for the anchor ${target}`);
          continue;
        }
        const file = path.join(repoRoot, path.dirname(doc), target.split('#')[0] as string);
        assert.ok(existsSync(file), `${doc}: the link ${target} leads nowhere`);
      }
    }
  });
});
