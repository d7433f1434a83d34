/**
 * The container files: Dockerfile, .dockerignore, compose.yaml and deploy/nginx.conf.
 *
 * Docker cannot run on the CI machine (and hadolint is not packaged for Debian), so this does
 * the next best thing:
 *  1. lints the files structurally: stages, user, health check, ports, tags, what gets copied,
 *     the replicas, Redis and the load balancer in compose.yaml, and nginx's config (with
 *     `nginx -t` when nginx is installed);
 *  2. replays the Dockerfile outside Docker: every stage's COPY and RUN instructions are parsed
 *     from the Dockerfile and executed in order, in one temp directory per stage (WORKDIR /app
 *     becomes that directory), on a build context made of the project's files minus what
 *     .dockerignore leaves out. Then the runtime stage's CMD starts with its ENV, and its
 *     HEALTHCHECK command, /v1/models, the chat page, /docs and one completion from the embedded
 *     model (the native llama.cpp binary the image keeps) must work.
 *
 * What the replay does not reproduce: the base image (the host's Node and glibc stand in for
 * node:20-bookworm-slim), `COPY --from` and `FROM <stage>` use hard links instead of copies (the
 * same bytes, in a fraction of the time and space: node_modules is ~165 MB), `chown node:node` is
 * a shim (the host has no `node` user), and npm is told to prefer its local cache
 * (npm_config_prefer_offline) so that the install takes seconds; the install command itself is
 * the Dockerfile's.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');

// ---------------------------------------------------------------------------------------------
// A small Dockerfile parser: enough for this project's Dockerfile, strict about the rest.
// ---------------------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  /** Flags such as --from=build or --mount=…, in order. */
  flags: string[];
  /** The rest of the line, flags removed, continuations joined. */
  args: string;
  line: number;
}

interface Stage {
  name: string;
  /** The FROM image, ARGs substituted: an image reference or an earlier stage's name. */
  base: string;
  instructions: Instruction[];
}

function parseDockerfile(text: string): { globalArgs: Map<string, string>; stages: Stage[] } {
  const logical: Array<{ text: string; line: number }> = [];
  let pending: { text: string; line: number } | undefined;
  text.split('\n').forEach((raw, index) => {
    const trimmed = raw.trim();
    // Comment lines are dropped, also between continued lines (as Docker does).
    if (trimmed.startsWith('#') || (trimmed === '' && pending === undefined)) return;
    const continued = trimmed.endsWith('\\');
    const part = continued ? trimmed.slice(0, -1) : trimmed;
    pending = pending === undefined ? { text: part, line: index + 1 } : { text: `${pending.text} ${part}`, line: pending.line };
    if (!continued) {
      logical.push(pending);
      pending = undefined;
    }
  });
  assert.equal(pending, undefined, 'the Dockerfile ends inside a continued line');
  const globalArgs = new Map<string, string>();
  const stages: Stage[] = [];
  for (const { text: line, line: number } of logical) {
    const match = /^(\w+)\s+(.*)$/s.exec(line);
    assert.ok(match, `Dockerfile line ${number}: not an instruction: ${line}`);
    const keyword = (match[1] as string).toUpperCase();
    let rest = (match[2] as string).trim();
    const flags: string[] = [];
    for (let flag = /^--[\w-]+=\S+\s+/.exec(rest); flag; flag = /^--[\w-]+=\S+\s+/.exec(rest)) {
      flags.push(flag[0].trim());
      rest = rest.slice(flag[0].length);
    }
    if (keyword === 'FROM') {
      const from = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(rest);
      assert.ok(from, `Dockerfile line ${number}: FROM ${rest}`);
      const base = (from[1] as string).replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => {
        const name = (a ?? b) as string;
        const value = globalArgs.get(name);
        assert.ok(value !== undefined, `Dockerfile line ${number}: ARG ${name} has no default`);
        return value;
      });
      stages.push({ name: from[2] ?? String(stages.length), base, instructions: [] });
      continue;
    }
    if (stages.length === 0) {
      assert.equal(keyword, 'ARG', `Dockerfile line ${number}: only ARG may come before the first FROM`);
      const equals = rest.indexOf('=');
      globalArgs.set(equals < 0 ? rest : rest.slice(0, equals), equals < 0 ? '' : rest.slice(equals + 1));
      continue;
    }
    (stages.at(-1) as Stage).instructions.push({ keyword, flags, args: rest, line: number });
  }
  return { globalArgs, stages };
}

/** ENV K=V K2="V 2" … (the legacy `ENV K V` form is refused: it is ambiguous). */
function parseEnv(args: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  const pattern = /(\w+)=("(?:[^"\\]|\\.)*"|\S*)\s*/gy;
  let consumed = 0;
  for (let match = pattern.exec(args); match; match = pattern.exec(args)) {
    const raw = match[2] as string;
    pairs.push([match[1] as string, raw.startsWith('"') ? (JSON.parse(raw) as string) : raw]);
    consumed = pattern.lastIndex;
  }
  assert.equal(consumed, args.length, `ENV ${args}: use the KEY=value form`);
  return pairs;
}

/** COPY/ADD sources and destination, JSON or whitespace form. */
function copyParts(args: string): { sources: string[]; dest: string } {
  const parts = args.startsWith('[') ? (JSON.parse(args) as string[]) : args.split(/\s+/);
  assert.ok(parts.length >= 2, `COPY ${args}: needs a source and a destination`);
  return { sources: parts.slice(0, -1), dest: parts.at(-1) as string };
}

const flag = (instruction: Instruction, name: string): string | undefined => instruction.flags.find((f) => f.startsWith(`--${name}=`))?.slice(name.length + 3);
const execForm = (args: string): string[] => {
  assert.ok(args.startsWith('['), `${args}: use the exec (JSON array) form`);
  return JSON.parse(args) as string[];
};

/** .dockerignore patterns, Docker's semantics for what this project uses: anchored at the context root, `*`, `**`, `!`. */
function dockerignore(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'))
    .map((line) => {
      const negate = line.startsWith('!');
      const pattern = path.posix.normalize((negate ? line.slice(1) : line).replace(/^\/+/, ''));
      const source = pattern
        .split(/(\*\*\/?|\*|\?)/)
        .map((piece) =>
          piece === '**/' || piece === '**' ? '(?:.*/)?' : piece === '*' ? '[^/]*' : piece === '?' ? '[^/]' : piece.replace(/[.+^${}()|[\]\\]/g, '\\$&'),
        )
        .join('');
      return { negate, regex: new RegExp(`^${source}$`) };
    });
  return (file) => {
    // A pattern matching a directory excludes everything below it.
    const prefixes = file.split('/').map((_, i, parts) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (prefixes.some((prefix) => rule.regex.test(prefix))) excluded = !rule.negate;
    return excluded;
  };
}

// ---------------------------------------------------------------------------------------------
// The files
// ---------------------------------------------------------------------------------------------

const dockerfile = parseDockerfile(read('Dockerfile'));
const runtime = dockerfile.stages.at(-1) as Stage;
const stageNames = new Set(dockerfile.stages.map((stage) => stage.name));
const runtimeOf = (keyword: string): Instruction[] => runtime.instructions.filter((i) => i.keyword === keyword);
const runtimeEnv = new Map(runtimeOf('ENV').flatMap((i) => parseEnv(i.args)));

type Env = Record<string, string>;
interface Service {
  image?: string;
  build?: unknown;
  environment?: Env | string[];
  env_file?: unknown;
  healthcheck?: { test?: string[] | string };
  depends_on?: Record<string, unknown> | string[];
  deploy?: { replicas?: number };
  ports?: string[];
  volumes?: string[];
  command?: string[] | string;
}
// merge: true for the `<<: *gateway` keys (YAML merge keys, which compose supports).
const compose = parseYaml(read('compose.yaml'), { merge: true }) as { services: Record<string, Service> };
const environment = (service: Service): Env =>
  Array.isArray(service.environment)
    ? Object.fromEntries(service.environment.map((entry) => [entry.split('=')[0] as string, entry.slice(entry.indexOf('=') + 1)]))
    : (service.environment ?? {});
const services = Object.entries(compose.services);
const gateways = services.filter(([, service]) => service.build !== undefined || /^interference[:@]/.test(service.image ?? ''));
const lbs = services.filter(([, service]) => /^(nginx|haproxy)[:@]/.test(service.image ?? ''));

describe('Dockerfile', () => {
  test('is multi-stage, on tagged Node 20 slim images, never `latest`', () => {
    assert.ok(dockerfile.stages.length >= 2, 'a build stage and a runtime stage');
    for (const stage of dockerfile.stages) {
      if (stageNames.has(stage.base)) continue;
      assert.match(stage.base, /^[\w./-]+:[\w.-]+$/, `FROM ${stage.base}: name a tag`);
      assert.doesNotMatch(stage.base, /:latest$/, `FROM ${stage.base}`);
    }
    assert.match(runtime.base, /^node:20[\w.-]*-slim$|^node:20[\w.-]*-bookworm-slim$/, 'the runtime runs on node:20 slim');
  });

  test('runs as a user that is not root, listens on 0.0.0.0:1337, starts dist/src/main.js', () => {
    const order = runtime.instructions.map((i) => i.keyword);
    const cmd = order.lastIndexOf('CMD');
    const user = order.lastIndexOf('USER', cmd);
    assert.ok(cmd >= 0 && user >= 0, 'USER before CMD');
    const name = (runtime.instructions[user] as Instruction).args.split(':')[0];
    assert.notEqual(name, 'root');
    assert.notEqual(name, '0');
    assert.deepEqual(execForm((runtime.instructions[cmd] as Instruction).args), ['node', 'dist/src/main.js']);
    assert.equal(runtimeEnv.get('HOST'), '0.0.0.0');
    assert.ok(
      runtimeOf('EXPOSE').some((i) => i.args.split(/\s+/).includes('1337')),
      'EXPOSE 1337',
    );
    assert.equal(runtimeEnv.get('PORT') ?? '1337', '1337');
    for (const variable of runtimeEnv.keys()) assert.doesNotMatch(variable, /KEY|TOKEN|SECRET|PASSWORD/, `ENV ${variable}: no secrets in the image`);
  });

  test('checks /health with node (slim images have no curl)', () => {
    const checks = runtimeOf('HEALTHCHECK');
    assert.equal(checks.length, 1);
    const command = (checks[0] as Instruction).args.replace(/^(--\S+\s+)*/, '');
    assert.match(command, /^CMD\s+\[/);
    const argv = execForm(command.replace(/^CMD\s+/, ''));
    assert.equal(argv[0], 'node');
    assert.match(argv.join(' '), /\/health/);
  });

  test('copies only what the server needs, production dependencies only', () => {
    const allowedFromContext = new Set(['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src', 'web']);
    for (const stage of dockerfile.stages) {
      for (const copy of stage.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')) {
        assert.equal(copy.keyword, 'COPY', `line ${copy.line}: COPY, not ADD`);
        if (flag(copy, 'from') !== undefined) continue;
        for (const source of copyParts(copy.args).sources) {
          assert.ok(
            allowedFromContext.has(source.replace(/^\.\//, '').replace(/\/$/, '')),
            `line ${copy.line}: COPY ${source} (only ${[...allowedFromContext].join(', ')})`,
          );
        }
      }
    }
    // The runtime stage: node_modules and dist from the other stages, package.json and web/ from the context.
    const copied = runtimeOf('COPY').flatMap((copy) => copyParts(copy.args).sources.map((source) => path.posix.basename(source.replace(/\/$/, ''))));
    assert.deepEqual(copied.sort(), ['dist', 'node_modules', 'package.json', 'web']);
    // node_modules comes from a stage that installed without dev dependencies.
    const modules = runtimeOf('COPY').find((copy) => copyParts(copy.args).sources.some((source) => source.endsWith('node_modules')));
    const from = modules === undefined ? undefined : dockerfile.stages.find((stage) => stage.name === flag(modules, 'from'));
    assert.ok(from, 'node_modules is copied from an earlier stage');
    const install = from.instructions
      .filter((i) => i.keyword === 'RUN')
      .map((i) => i.args)
      .join(' && ');
    assert.match(install, /npm ci [^&]*--omit=dev|npm prune [^&]*--omit=dev/);
    assert.doesNotMatch(install, /npm install\b/, 'npm ci: the lockfile, exactly');
  });

  test('the volumes are the models and images directories, owned by the user', () => {
    const volumes = runtimeOf('VOLUME').flatMap((i) => (i.args.startsWith('[') ? (JSON.parse(i.args) as string[]) : i.args.split(/\s+/)));
    const models = runtimeEnv.get('INTERFERENCE_MODELS_DIR');
    const images = runtimeEnv.get('INTERFERENCE_IMAGES_DIR');
    assert.ok(models !== undefined && images !== undefined, 'ENV INTERFERENCE_MODELS_DIR and INTERFERENCE_IMAGES_DIR');
    assert.deepEqual(volumes.sort(), [images, models].sort());
    const user = (runtimeOf('USER').at(-1) as Instruction).args;
    assert.ok(
      runtimeOf('RUN').some((run) => new RegExp(`chown ${user}(:${user})? `).test(run.args)),
      `a RUN chowns the volume directories to ${user}`,
    );
  });

  test('.dockerignore keeps dependencies, git, tests and secrets out of the context', () => {
    const ignored = dockerignore(read('.dockerignore'));
    for (const file of [
      'node_modules/undici/package.json',
      'web/node_modules/x',
      '.git/HEAD',
      'test/docker.test.ts',
      'bench/run.ts',
      'dist/src/main.js',
      '.env',
      '.env.local',
      'interference.config.json',
    ])
      assert.ok(ignored(file), `${file} is left out`);
    for (const file of ['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.build.json', 'src/main.ts', 'web/chat/index.html'])
      assert.ok(!ignored(file), `${file} is kept`);
  });
});

describe('compose.yaml', () => {
  test('two gateway replicas of the image, with Redis, the gateway key and the public URL', () => {
    const replicas = gateways.reduce((sum, [, service]) => sum + (service.deploy?.replicas ?? 1), 0);
    assert.equal(replicas, 2, `two replicas (services: ${gateways.map(([name]) => name).join(', ')})`);
    for (const [name, service] of gateways) {
      const env = environment(service);
      assert.equal(env.REDIS_URL, 'redis://redis:6379', `${name}: REDIS_URL`);
      assert.equal(env.HOST, '0.0.0.0', `${name}: HOST`);
      assert.match(env.INTERFERENCE_API_KEY ?? '', /^\$\{INTERFERENCE_API_KEY[:?}]/, `${name}: the gateway key comes from .env`);
      assert.match(env.INTERFERENCE_PUBLIC_URL ?? '', /\S/, `${name}: INTERFERENCE_PUBLIC_URL`);
      // No secret written into compose.yaml: every *_KEY is a ${…} reference.
      for (const [variable, value] of Object.entries(env)) if (/KEY|TOKEN|SECRET/.test(variable)) assert.match(value, /^\$\{/, `${name}: ${variable}`);
      assert.ok(service.env_file !== undefined, `${name}: provider keys come from an env_file`);
      assert.match(JSON.stringify(service.healthcheck?.test ?? ''), /\/ready/, `${name}: the health check asks /ready`);
      const dependsOn = Array.isArray(service.depends_on) ? service.depends_on : Object.keys(service.depends_on ?? {});
      assert.ok(dependsOn.includes('redis'), `${name} depends on redis`);
    }
  });

  test('a Redis service and a load balancer in front of both replicas', () => {
    const redis = compose.services.redis;
    assert.ok(redis, 'a service named redis (REDIS_URL names it)');
    assert.match(redis.image ?? '', /^redis:7[\w.-]*$/);
    assert.ok(redis.healthcheck?.test, 'redis healthcheck');
    assert.equal(lbs.length, 1, 'one nginx or haproxy service');
    const [lbName, lb] = lbs[0] as [string, Service];
    assert.ok(lb.healthcheck?.test, `${lbName} healthcheck`);
    assert.ok((lb.ports ?? []).length > 0, `${lbName} publishes a port`);
    assert.ok(
      (lb.volumes ?? []).some((volume) => volume.startsWith('./deploy/')),
      `${lbName} mounts its config from deploy/`,
    );
    const dependsOn = Array.isArray(lb.depends_on) ? lb.depends_on : Object.keys(lb.depends_on ?? {});
    for (const [name] of gateways) assert.ok(dependsOn.includes(name), `${lbName} waits for ${name}`);
    for (const [name, service] of services) {
      if (service.image === undefined) continue;
      assert.match(service.image, /:[\w.-]+$/, `${name}: tagged image`);
      assert.doesNotMatch(service.image, /:latest$/, `${name}: not latest`);
    }
    // The public URL defaults to the balancer's published port.
    const published = String((lb.ports ?? [])[0]);
    const defaultPort = /^\$\{\w+:-(\d+)\}:/.exec(published)?.[1] ?? /^(\d+):/.exec(published)?.[1];
    assert.ok(defaultPort, `${lbName}: ports ${published}`);
    for (const [name, service] of gateways)
      assert.match(environment(service).INTERFERENCE_PUBLIC_URL ?? '', new RegExp(`:${defaultPort}\\b`), `${name}: public URL on the LB's port`);
  });

  test('deploy/env.example documents the .env it reads', () => {
    const example = read('deploy/env.example');
    assert.match(example, /^INTERFERENCE_API_KEY=$/m, 'the gateway key, left empty');
    assert.doesNotMatch(example, /^\w+_API_KEY=\S+/m, 'no key filled in');
  });
});

describe('deploy/nginx.conf', () => {
  const conf = read('deploy/nginx.conf');
  const code = conf.replace(/#.*$/gm, '').replace(/"(?:[^"\\]|\\.)*"/g, '""');

  test('balanced braces, every statement ends with ; or a block', () => {
    let depth = 0;
    for (const char of code) {
      if (char === '{') depth++;
      if (char === '}') depth--;
      assert.ok(depth >= 0, 'a } without its {');
    }
    assert.equal(depth, 0, 'every { is closed');
    // A directive spanning lines is a forgotten `;` (comments and strings are gone by now).
    for (const piece of code.split(/[;{}]/)) assert.ok(!piece.trim().includes('\n'), `missing ; after: ${piece.trim()}`);
    assert.equal(code.split(/[;{}]/).at(-1)?.trim(), '', 'nothing after the last statement');
  });

  test('balances both gateway services, streams unbuffered, forwards host and scheme', () => {
    const servers = [...code.matchAll(/^\s*server\s+([\w.-]+):(\d+)/gm)].map((m) => `${m[1]}:${m[2]}`);
    assert.deepEqual(servers.sort(), gateways.map(([name]) => `${name}:1337`).sort());
    assert.match(code, /proxy_buffering\s+off;/);
    assert.match(code, /proxy_set_header\s+X-Forwarded-Host\s/);
    assert.match(code, /proxy_set_header\s+X-Forwarded-Proto\s/);
    assert.match(code, /proxy_read_timeout\s+\d{3,}s;/, 'long enough for a slow model');
  });

  test('nginx -t accepts it (when nginx is installed)', (t) => {
    let nginx: string;
    try {
      nginx = execFileSync('sh', ['-c', 'command -v nginx || ls /usr/sbin/nginx'], { encoding: 'utf8' }).trim();
    } catch {
      t.skip('nginx is not installed (apt-get install nginx-light)');
      return;
    }
    const dir = mkdtempSync(path.join(os.tmpdir(), 'interference-nginx-'));
    try {
      // The replicas' names only resolve inside compose's network: point them at loopback.
      const file = path.join(dir, 'nginx.conf');
      // Logs and pid file go to the temp directory, so that the check needs no root.
      const local = conf
        .replace(/server\s+gateway-\d+:1337/g, 'server 127.0.0.1:1337')
        .replace(/^pid .*$/m, `pid ${dir}/nginx.pid;`)
        .replaceAll('/var/log/nginx/', `${dir}/`);
      writeFileSync(file, local);
      execFileSync(nginx, ['-t', '-q', '-p', dir, '-c', file], { encoding: 'utf8', stdio: 'pipe' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Replaying the build and starting the result
// ---------------------------------------------------------------------------------------------

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

function run(
  command: string,
  args: string[],
  options: { cwd: string; env: Env; uid?: number; timeoutMs: number },
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
    });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

describe('the Dockerfile, replayed outside Docker', { timeout: 240_000 }, () => {
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'interference-docker-'));
  const context = path.join(tmp, 'context');
  /** Absolute paths of the image (ENV values such as /data/models) land below this. */
  const rootfs = path.join(tmp, 'rootfs');
  const stageDirs = new Map<string, string>();
  const stageEnvs = new Map<string, Env>();
  const chownLog = path.join(tmp, 'chown.log');
  // As root here, the server runs as `nobody`, standing in for the image's `node` user: a
  // directory it must write to and does not own then fails, as it would in the container.
  const sandboxUid = process.getuid?.() === 0 ? 65534 : undefined;
  const gatewayKey = 'docker-test-key';
  let server: ChildProcess | undefined;
  let origin = '';
  let port = 0;
  let serverOutput = '';
  let runEnv: Env = {};
  let runtimeDir = '';

  const inImage = (value: string): string => (value.startsWith('/') && !value.startsWith('/app') ? path.join(rootfs, value) : value);

  before(async () => {
    // World-readable, so that the sandbox user can read the app (mkdtemp makes it 0700).
    chmodSync(tmp, 0o755);
    // The build context: the project's files (tracked, and new ones not ignored by git, as the
    // docker CLI would see them in this working tree) minus .dockerignore.
    const ignored = dockerignore(read('.dockerignore'));
    const files = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], { cwd: repoRoot, encoding: 'utf8' })
      .split('\0')
      .filter((file) => file !== '' && !ignored(file) && existsSync(path.join(repoRoot, file)));
    for (const file of files) {
      mkdirSync(path.dirname(path.join(context, file)), { recursive: true });
      cpSync(path.join(repoRoot, file), path.join(context, file));
    }
    // `chown node:node DIR…`: the host has no `node` user. The shim records the call and gives
    // the directories to the sandbox user, the `node` user's stand-in.
    const shims = path.join(tmp, 'shims');
    mkdirSync(shims);
    writeFileSync(
      path.join(shims, 'chown'),
      `#!/bin/sh\necho "$@" >> ${JSON.stringify(chownLog)}\nshift\n${sandboxUid === undefined ? 'exit 0' : `exec /bin/chown ${sandboxUid}:${sandboxUid} "$@"`}\n`,
      { mode: 0o755 },
    );

    for (const stage of dockerfile.stages) {
      const dir = path.join(tmp, 'stages', stage.name);
      const parent = stageDirs.get(stage.base);
      if (parent !== undefined) execFileSync('cp', ['-al', parent, dir]);
      else mkdirSync(dir, { recursive: true });
      stageDirs.set(stage.name, dir);
      const env: Env = { ...(stageEnvs.get(stage.base) ?? {}) };
      stageEnvs.set(stage.name, env);
      for (const instruction of stage.instructions) {
        const { keyword, args } = instruction;
        if (keyword === 'WORKDIR') assert.equal(args, '/app', 'the replay maps WORKDIR /app to the stage directory');
        else if (keyword === 'ENV') for (const [name, value] of parseEnv(args)) env[name] = value;
        else if (keyword === 'COPY') {
          const { sources, dest } = copyParts(args);
          const from = flag(instruction, 'from');
          for (const source of sources) {
            const target = path.join(dir, dest.endsWith('/') ? path.join(dest, path.basename(source)) : dest);
            if (from === undefined) {
              cpSync(path.join(context, source), target, { recursive: true });
            } else {
              const fromDir = stageDirs.get(from);
              assert.ok(fromDir, `COPY --from=${from}: no such stage`);
              assert.ok(source.startsWith('/app/'), `COPY --from=${from} ${source}: the replay knows /app only`);
              mkdirSync(path.dirname(target), { recursive: true });
              execFileSync('cp', ['-al', path.join(fromDir, source.slice('/app/'.length)), target]);
            }
          }
        } else if (keyword === 'RUN') {
          const shellEnv: Env = {
            PATH: `${shims}${path.delimiter}${process.env.PATH ?? ''}`,
            HOME: process.env.HOME ?? tmp,
            // Only a hint to npm to use its local cache first; `npm ci` still installs exactly the lockfile.
            npm_config_prefer_offline: 'true',
            ...Object.fromEntries(Object.entries(env).map(([name, value]) => [name, inImage(value)])),
          };
          const started = Date.now();
          const result = await run('sh', ['-ec', args], { cwd: dir, env: shellEnv, timeoutMs: 180_000 });
          assert.equal(result.code, 0, `stage ${stage.name}, line ${instruction.line}: RUN ${args}\n${result.output.slice(-3000)}`);
          process.stderr.write(`# docker replay: stage ${stage.name}, RUN ${args.slice(0, 60)}… ${((Date.now() - started) / 1000).toFixed(1)}s\n`);
        } else if (!['USER', 'EXPOSE', 'VOLUME', 'HEALTHCHECK', 'CMD', 'ARG', 'LABEL'].includes(keyword)) {
          assert.fail(`line ${instruction.line}: the replay does not know ${keyword}`);
        }
      }
    }

    runtimeDir = stageDirs.get(runtime.name) as string;
    port = await freePort();
    const home = path.join(tmp, 'home');
    mkdirSync(home, { recursive: true });
    if (sandboxUid !== undefined) execFileSync('chown', [`${sandboxUid}:${sandboxUid}`, home]);
    runEnv = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      ...Object.fromEntries([...runtimeEnv].map(([name, value]) => [name, inImage(value)])),
      // Loopback and a free port here; the image's own values are checked above.
      HOST: '127.0.0.1',
      PORT: String(port),
      INTERFERENCE_API_KEY: gatewayKey,
      INTERFERENCE_LOCAL_MODEL: path.resolve(repoRoot, '../shared/models/stories260K.gguf'),
      // Offline: no prompt may leave the machine from a test.
      INTERFERENCE_PUBLIC_PROVIDERS: 'off',
    };
    const cmd = execForm((runtimeOf('CMD').at(-1) as Instruction).args);
    server = spawn(cmd[0] as string, cmd.slice(1), {
      cwd: runtimeDir,
      env: runEnv,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(sandboxUid === undefined ? {} : { uid: sandboxUid, gid: sandboxUid }),
    });
    origin = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not listening after 30 s:\n${serverOutput}`)), 30_000);
      const onData = (chunk: Buffer): void => {
        serverOutput += chunk.toString();
        const match = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(serverOutput);
        if (match) {
          clearTimeout(timer);
          resolve(match[1] as string);
        }
      };
      server?.stdout?.on('data', onData);
      server?.stderr?.on('data', onData);
      server?.once('exit', (code) => reject(new Error(`exited (${code}) before listening:\n${serverOutput}`)));
    });
  });

  after(async () => {
    if (server && server.exitCode === null && server.signalCode === null) {
      const exited = new Promise((resolve) => server?.once('exit', resolve));
      server.kill('SIGTERM');
      await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5000))]);
      if (server.exitCode === null && server.signalCode === null) server.kill('SIGKILL');
    }
    rmSync(tmp, { recursive: true, force: true });
  });

  test('the image holds dist, web, package.json and production dependencies only', () => {
    const entries = readdirSync(runtimeDir).sort();
    assert.deepEqual(entries, ['dist', 'node_modules', 'package.json', 'web']);
    assert.ok(existsSync(path.join(runtimeDir, 'dist/src/main.js')));
    for (const dev of ['@portkey-ai', 'playwright-core', 'eslint', 'autocannon', 'tsx'])
      assert.ok(!existsSync(path.join(runtimeDir, 'node_modules', dev)), `no dev dependency ${dev}`);
    // The prebuilt llama.cpp binary for this platform is kept, the GPU builds are not.
    const prebuilt = readdirSync(path.join(runtimeDir, 'node_modules/@node-llama-cpp'));
    assert.ok(
      prebuilt.includes(`${process.platform}-${process.arch}`),
      `prebuilt binary for ${process.platform}-${process.arch} (found ${prebuilt.join(', ')})`,
    );
    assert.deepEqual(
      prebuilt.filter((name) => /cuda|vulkan/.test(name)),
      [],
    );
    // The volume directories exist and were given to the user (through the chown shim).
    for (const variable of ['INTERFERENCE_MODELS_DIR', 'INTERFERENCE_IMAGES_DIR']) assert.ok(statSync(runEnv[variable] as string).isDirectory(), variable);
    assert.match(readFileSync(chownLog, 'utf8'), /^node:node /m);
  });

  test('the HEALTHCHECK command passes while the server runs', async () => {
    const check = runtimeOf('HEALTHCHECK')[0] as Instruction;
    const argv = execForm(check.args.replace(/^(--\S+\s+)*CMD\s+/, ''));
    const result = await run(argv[0] as string, argv.slice(1), { cwd: runtimeDir, env: runEnv, uid: sandboxUid, timeoutMs: 10_000 });
    assert.equal(result.code, 0, result.output);
    // And fails against a port where nothing listens: it does test something.
    const dead = await run(argv[0] as string, argv.slice(1), {
      cwd: runtimeDir,
      env: { ...runEnv, PORT: String(await freePort()) },
      uid: sandboxUid,
      timeoutMs: 10_000,
    });
    assert.notEqual(dead.code, 0);
  });

  test('/v1/models, the chat page and /docs answer', async () => {
    const models = await fetch(`${origin}/v1/models`, { headers: { authorization: `Bearer ${gatewayKey}` } });
    assert.equal(models.status, 200);
    const body = (await models.json()) as { data: Array<{ id: string }> };
    assert.ok(
      body.data.some((model) => model.id === 'stories260K'),
      'the embedded model is listed',
    );
    assert.equal((await fetch(`${origin}/v1/models`)).status, 401, 'the gateway key is required');
    for (const page of ['/chat', '/chat/marked.esm.js', '/docs', '/docs/swagger-ui-bundle.js']) {
      const response = await fetch(`${origin}${page}`);
      assert.equal(response.status, 200, page);
      await response.arrayBuffer();
    }
  });

  test('the embedded model answers: the native binary survived the install', async () => {
    const response = await fetch(`${origin}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${gatewayKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ provider: 'Local', messages: [{ role: 'user', content: 'Once upon a time' }], max_tokens: 8 }),
    });
    const text = await response.text();
    assert.equal(response.status, 200, `${text}\n${serverOutput.slice(-2000)}`);
    const body = JSON.parse(text) as { provider: string; choices: Array<{ message: { content: string } }> };
    assert.equal(body.provider, 'Local');
    assert.ok((body.choices[0]?.message.content ?? '').length > 0);
  });
});
