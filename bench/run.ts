/**
 * `npm run bench`: the fake upstream called directly, through two minimal reference proxies
 * (proxy-raw.ts, the floor; proxy-parse.ts), through Interference and through Portkey's gateway,
 * JSON and streaming, in one run on this machine. Loopback only; every process it starts is
 * stopped at the end (and on Ctrl-C or a crash).
 *
 *   npm run bench [-- --quick] [--skip-portkey] [--skip-proxies] [--skip-redis] [--rounds=1]
 *                 [--duration=10] [--connections=50] [--samples=2000] [--retries=1] [--no-build]
 *                 [--profile]
 *
 * Environment equivalents: BENCH_DURATION, BENCH_CONNECTIONS, BENCH_SAMPLES, BENCH_RETRIES,
 * BENCH_ROUNDS, BENCH_QUICK=1, BENCH_SKIP_PORTKEY=1, BENCH_SKIP_PROXIES=1, BENCH_SKIP_REDIS=1,
 * BENCH_NO_BUILD=1, BENCH_PROFILE=1, BENCH_NODE (the Node binary for the children) and
 * BENCH_REDIS_SERVER (the redis-server binary, default /usr/bin/redis-server).
 *
 * Progress goes to stderr; the tables (markdown) to stdout; everything measured to
 * bench/results/latest.json (bench/results/quick.json with --quick).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import {
  checkConcurrent,
  measureSequential,
  once,
  stats,
  type BenchRequest,
  type ConcurrentCheck,
  type Sample,
  type SequentialResult,
  type SequentialTarget,
  type Stats,
} from './latency.js';
import {
  cpuSeconds,
  installCleanup,
  pinProcesses,
  managedPids,
  peakRssMB,
  systemBusySeconds,
  rssMB,
  run,
  sampleRss,
  start,
  stillRunning,
  stop,
  stopAll,
  unexpectedExits,
  type Managed,
} from './processes.js';
import { startProxy } from './minimal-proxies.js';
import { combineRounds, combineSequential, median } from './rounds.js';
import { STREAM_EVENTS } from './upstream.js';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(benchDir, '..');

/**
 * PATH for the children, without node_modules/.bin: npm puts that directory first, and a `node`
 * binary in it (a dev dependency once shipped Node 22 there) would silently change the runtime
 * being measured. The project runs on the system Node.
 */
const childPath = (process.env.PATH ?? '')
  .split(path.delimiter)
  .filter((dir) => !dir.includes(`${path.sep}node_modules${path.sep}`) && !dir.endsWith(`${path.sep}node_modules`))
  .join(path.delimiter);

/** The Node binary every child runs on: BENCH_NODE, else the first `node` on PATH outside node_modules. */
function findNode(): string {
  const explicit = process.env.BENCH_NODE;
  if (explicit !== undefined && explicit !== '') return explicit;
  for (const dir of childPath.split(path.delimiter)) {
    const candidate = path.join(dir, 'node');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return process.execPath;
}
const nodeBin = findNode();
const startedAt = performance.now();
/** Share of a core used by other processes above which a run counts as disturbed. */
const DISTURBED = 0.15;
const watchPreload = path.join(benchDir, 'parent-watch.cjs');
const loopbackPreload = path.join(benchDir, 'loopback.cjs');

function log(line: string): void {
  const seconds = ((performance.now() - startedAt) / 1000).toFixed(1).padStart(6);
  process.stderr.write(`[bench ${seconds}s] ${line}\n`);
}

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------

interface Options {
  quick: boolean;
  skipPortkey: boolean;
  /** Leaves out the two minimal reference proxies (and with them the ratios to the floor). */
  skipProxies: boolean;
  /** Leaves out the shared-state comparison (JSON c=50 with REDIS_URL unset, then set). */
  skipRedis: boolean;
  build: boolean;
  profile: boolean;
  /** Seconds per autocannon run. */
  duration: number;
  connections: number;
  /** Seconds of autocannon warm-up per target and mode. */
  warmup: number;
  /** Requests per target at one connection (Portkey streams: fewer, it sleeps 25 ms each). */
  samples: number;
  portkeyStreamSamples: number;
  sequentialWarmup: number;
  /** Interleaved rounds inside one c=1 measurement (not --rounds). */
  rounds: number;
  /** --rounds: how many times the c=1 and c=50 measurements are repeated; medians are reported. */
  measureRounds: number;
  /** Requests per target and mode in the concurrent correctness check. */
  checkRequests: number;
  /** Failover: dead providers, each tried until its breaker opens. */
  deadProviders: number;
  failoverSamples: number;
  /** Extra load runs when one was disturbed by other processes. */
  retries: number;
  /** --pin: the measured targets on core 1; the runner (load and c=1 client), the fake and Redis on core 0. */
  pin: boolean;
}

function parseOptions(argv: readonly string[], env: NodeJS.ProcessEnv): Options {
  const flags = new Map<string, string>();
  for (const arg of argv) {
    const match = /^--([a-z-]+)(?:=(.*))?$/.exec(arg);
    if (!match) throw new Error(`unknown argument ${arg}`);
    flags.set(match[1] as string, match[2] ?? 'true');
  }
  const known = [
    'quick',
    'skip-portkey',
    'skip-proxies',
    'skip-redis',
    'rounds',
    'duration',
    'connections',
    'samples',
    'retries',
    'no-build',
    'profile',
    'pin',
    'help',
  ];
  for (const name of flags.keys()) if (!known.includes(name)) throw new Error(`unknown option --${name} (known: ${known.map((k) => `--${k}`).join(' ')})`);
  if (flags.has('help')) {
    process.stderr.write(
      'npm run bench [-- --quick] [--skip-portkey] [--skip-proxies] [--skip-redis] [--rounds=N] [--duration=S] [--connections=N] [--samples=N] [--retries=N] [--no-build] [--profile] [--pin]\n',
    );
    process.exit(0);
  }
  const bool = (flag: string, variable: string): boolean => flags.has(flag) || env[variable] === '1' || env[variable] === 'true';
  const num = (flag: string, variable: string, fallback: number, min: number, max: number): number => {
    const raw = flags.get(flag) ?? env[variable];
    if (raw === undefined || raw === '') return fallback;
    const value = Number(raw);
    if (!Number.isFinite(value) || value < min || value > max) throw new Error(`--${flag} / ${variable} must be a number from ${min} to ${max}, got ${raw}`);
    return value;
  };
  const quick = bool('quick', 'BENCH_QUICK');
  const samples = Math.round(num('samples', 'BENCH_SAMPLES', quick ? 300 : 2000, 10, 1_000_000));
  return {
    quick,
    skipPortkey: bool('skip-portkey', 'BENCH_SKIP_PORTKEY'),
    skipProxies: bool('skip-proxies', 'BENCH_SKIP_PROXIES'),
    skipRedis: bool('skip-redis', 'BENCH_SKIP_REDIS'),
    build: !bool('no-build', 'BENCH_NO_BUILD'),
    profile: bool('profile', 'BENCH_PROFILE'),
    duration: num('duration', 'BENCH_DURATION', quick ? 3 : 10, 1, 600),
    connections: Math.round(num('connections', 'BENCH_CONNECTIONS', 50, 1, 10_000)),
    warmup: quick ? 1 : 2,
    samples,
    portkeyStreamSamples: Math.max(10, Math.min(samples, quick ? 40 : 300)),
    sequentialWarmup: quick ? 50 : 200,
    rounds: quick ? 2 : 4,
    measureRounds: Math.round(num('rounds', 'BENCH_ROUNDS', 1, 1, 20)),
    checkRequests: quick ? 500 : 2000,
    deadProviders: quick ? 4 : 12,
    failoverSamples: quick ? 100 : 500,
    retries: Math.round(num('retries', 'BENCH_RETRIES', quick ? 0 : 1, 0, 5)),
    pin: bool('pin', 'BENCH_PIN'),
  };
}

// ---------------------------------------------------------------------------------------------
// Targets
// ---------------------------------------------------------------------------------------------

/** The processes whose cost is measured (their names in processes.ts): on core 1 under --pin. */
const measuredProcesses = new Set(['interference', 'portkey', 'proxy-raw', 'proxy-parse']);

/**
 * proxy-raw is the floor: a node:http + undici proxy that moves bytes and parses nothing.
 * proxy-parse also parses and re-serialises every body, the least any gateway must do.
 */
type TargetName = 'direct' | 'proxy-raw' | 'proxy-parse' | 'us' | 'portkey';
type Mode = 'json' | 'sse';
const targetNames: readonly TargetName[] = ['direct', 'proxy-raw', 'proxy-parse', 'us', 'portkey'];
const modes: readonly Mode[] = ['json', 'sse'];
const label: Record<TargetName, string> = {
  direct: 'direct',
  'proxy-raw': 'minimal proxy, raw',
  'proxy-parse': 'minimal proxy, parse',
  us: 'Interference',
  portkey: 'Portkey',
};
const key = (target: TargetName, mode: Mode): string => `${target} ${mode}`;

interface Target {
  name: TargetName;
  origin: string;
  /** The process whose memory and CPU are reported for this target. */
  proc: Managed;
  request(mode: Mode): BenchRequest;
}

const messages = [{ role: 'user', content: 'Say hello' }];

function upstreamRequest(mode: Mode): BenchRequest {
  const body = { model: 'gpt-4o-mini', messages, ...(mode === 'sse' ? { stream: true } : {}) };
  return {
    path: '/v1/chat/completions',
    headers: { 'content-type': 'application/json', authorization: 'Bearer sk-bench' },
    body: JSON.stringify(body),
    stream: mode === 'sse',
  };
}

/** How the gateway reads an off switch in its environment (`0`, `off`, `false`, `no`). */
function switchedOff(value: string | undefined): boolean {
  return value !== undefined && /^(0|off|false|no)$/i.test(value.trim());
}

function usRequest(mode: Mode, provider = 'Bench'): BenchRequest {
  const body = { model: 'gpt-4o-mini', provider, messages, ...(mode === 'sse' ? { stream: true } : {}) };
  return { path: '/v1/chat/completions', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), stream: mode === 'sse' };
}

function portkeyRequest(mode: Mode, upstreamOrigin: string, config?: string): BenchRequest {
  const body = { model: 'gpt-4o-mini', messages, ...(mode === 'sse' ? { stream: true } : {}) };
  const headers: Record<string, string> = { 'content-type': 'application/json', authorization: 'Bearer sk-bench' };
  if (config === undefined) {
    headers['x-portkey-provider'] = 'openai';
    headers['x-portkey-custom-host'] = `${upstreamOrigin}/v1`;
  } else headers['x-portkey-config'] = config;
  return { path: '/v1/chat/completions', headers, body: JSON.stringify(body), stream: mode === 'sse' };
}

// ---------------------------------------------------------------------------------------------
// autocannon
// ---------------------------------------------------------------------------------------------

interface AutocannonJson {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  '2xx': number;
  latency: { p50: number; p90: number; p99: number; average: number; max: number };
  requests: { total: number; average: number };
}

function isAutocannonJson(value: unknown): value is AutocannonJson {
  if (typeof value !== 'object' || value === null) return false;
  const record = value as Record<string, unknown>;
  const latency = record.latency as Record<string, unknown> | undefined;
  const requests = record.requests as Record<string, unknown> | undefined;
  return (
    typeof record.duration === 'number' &&
    typeof record.errors === 'number' &&
    typeof record.non2xx === 'number' &&
    typeof record['2xx'] === 'number' &&
    typeof latency?.p50 === 'number' &&
    typeof latency.p99 === 'number' &&
    typeof requests?.total === 'number'
  );
}

interface LoadResult {
  rps: number;
  requests: number;
  ok2xx: number;
  non2xx: number;
  errors: number;
  timeouts: number;
  seconds: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
  /** Highest RSS sampled during the run, MB: the gateway (or the upstream for direct). */
  rssPeakMB?: number;
  upstreamRssPeakMB?: number;
  /** CPU share of one core over the run. */
  gatewayCpu?: number;
  upstreamCpu?: number;
  loadgenCpu?: number;
  /** CPU used on this machine by processes the bench did not start, share of one core (noise check). */
  foreignCpu?: number;
  /** autocannon runs made for this row (more than 1 when earlier ones were disturbed). */
  runs?: number;
  /** Gateway CPU time per request, µs. */
  gatewayCpuPerRequestUs?: number;
  /** The fake upstream's CPU time per request, µs (for direct: the target's own cost). */
  upstreamCpuPerRequestUs?: number;
  /** With --rounds above 1: each round's result; the fields above are then their medians. */
  perRound?: LoadResult[];
}

/** How --rounds combines load results: medians, except counts (summed) and peaks (maximum). */
function combineLoad(rounds: readonly LoadResult[]): LoadResult {
  const combined = combineRounds(rounds, {
    requests: 'sum',
    ok2xx: 'sum',
    non2xx: 'sum',
    errors: 'sum',
    timeouts: 'sum',
    seconds: 'sum',
    runs: 'sum',
    rssPeakMB: 'max',
    upstreamRssPeakMB: 'max',
    foreignCpu: 'max',
  });
  return rounds.length > 1 ? { ...combined, perRound: [...rounds] } : combined;
}

const autocannonBin = path.join(repoRoot, 'node_modules/autocannon/autocannon.js');

async function autocannon(
  origin: string,
  request: BenchRequest,
  seconds: number,
  connections: number,
  watch: { gateway?: Managed; upstream: Managed },
): Promise<LoadResult> {
  const args = ['--require', watchPreload, autocannonBin, '-c', String(connections), '-d', String(seconds), '-t', '10', '-m', 'POST', '-j', '-n'];
  for (const [name, value] of Object.entries(request.headers)) args.push('-H', `${name}=${value}`);
  args.push('-b', request.body, `${origin}${request.path}`);
  const pids = [watch.upstream.pid, ...(watch.gateway ? [watch.gateway.pid] : [])];
  const sampler = sampleRss(pids, 200);
  const gatewayCpu0 = watch.gateway ? cpuSeconds(watch.gateway.pid) : undefined;
  const upstreamCpu0 = cpuSeconds(watch.upstream.pid);
  let loadgenCpu: number | undefined;
  let loadgenTimer: NodeJS.Timeout | undefined;
  const foreign = foreignMeter();
  const finished = await run('autocannon', nodeBin, args, {
    cwd: repoRoot,
    env: { PATH: childPath, HOME: os.tmpdir() },
    timeoutMs: (seconds + 30) * 1000,
    onStart: (proc) => {
      loadgenTimer = setInterval(() => {
        loadgenCpu = cpuSeconds(proc.pid) ?? loadgenCpu;
      }, 100);
    },
  });
  clearInterval(loadgenTimer);
  const foreignCpu = foreign.stop(loadgenCpu ?? 0);
  const peaks = sampler.stop();
  const gatewayCpu1 = watch.gateway ? cpuSeconds(watch.gateway.pid) : undefined;
  const upstreamCpu1 = cpuSeconds(watch.upstream.pid);
  let parsed: unknown;
  try {
    parsed = JSON.parse(finished.stdout.trim().split('\n').pop() ?? '');
  } catch {
    parsed = undefined;
  }
  if (finished.code !== 0 || !isAutocannonJson(parsed)) {
    throw new Error(`autocannon failed (exit ${finished.code}): ${finished.stderr.slice(-2000)} ${finished.stdout.slice(-500)}`);
  }
  const result: LoadResult = {
    rps: parsed['2xx'] / parsed.duration,
    requests: parsed.requests.total,
    ok2xx: parsed['2xx'],
    non2xx: parsed.non2xx,
    errors: parsed.errors,
    timeouts: parsed.timeouts,
    seconds: parsed.duration,
    p50: parsed.latency.p50,
    p90: parsed.latency.p90,
    p99: parsed.latency.p99,
    max: parsed.latency.max,
    mean: parsed.latency.average,
  };
  const gatewayPeak = watch.gateway ? peaks.get(watch.gateway.pid) : peaks.get(watch.upstream.pid);
  if (gatewayPeak !== undefined) result.rssPeakMB = gatewayPeak;
  const upstreamPeak = peaks.get(watch.upstream.pid);
  if (upstreamPeak !== undefined) result.upstreamRssPeakMB = upstreamPeak;
  if (gatewayCpu0 !== undefined && gatewayCpu1 !== undefined) {
    result.gatewayCpu = (gatewayCpu1 - gatewayCpu0) / parsed.duration;
    if (parsed.requests.total > 0) result.gatewayCpuPerRequestUs = ((gatewayCpu1 - gatewayCpu0) * 1e6) / parsed.requests.total;
  }
  if (upstreamCpu0 !== undefined && upstreamCpu1 !== undefined) {
    result.upstreamCpu = (upstreamCpu1 - upstreamCpu0) / parsed.duration;
    if (parsed.requests.total > 0) result.upstreamCpuPerRequestUs = ((upstreamCpu1 - upstreamCpu0) * 1e6) / parsed.requests.total;
  }
  if (loadgenCpu !== undefined) result.loadgenCpu = loadgenCpu / (parsed.duration + 0.3);
  if (foreignCpu !== undefined) result.foreignCpu = foreignCpu;
  return result;
}

/**
 * Starts measuring the CPU that processes the bench did not start use: machine busy time
 * (/proc/stat) minus this runner and every process started here. `stop(extra)` returns it as a
 * share of one core; `extra` = CPU seconds of processes that already exited (autocannon).
 */
function foreignMeter(): { stop(extraKnownSeconds?: number): number | undefined } {
  const known0 = new Map(managedPids().map((pid) => [pid, cpuSeconds(pid)] as const));
  const runner0 = process.cpuUsage();
  const busy0 = systemBusySeconds();
  const t0 = performance.now();
  return {
    stop(extraKnownSeconds = 0) {
      const busy1 = systemBusySeconds();
      const runner = process.cpuUsage(runner0);
      let known = (runner.user + runner.system) / 1e6 + extraKnownSeconds;
      for (const [pid, before] of known0) known += (cpuSeconds(pid) ?? before ?? 0) - (before ?? 0);
      const seconds = (performance.now() - t0) / 1000;
      if (busy0 === undefined || busy1 === undefined || seconds <= 0) return undefined;
      return Math.max(0, busy1 - busy0 - known) / seconds;
    },
  };
}

/** CPU used by the whole machine over `ms`, as a share of one core (before the bench starts anything). */
async function machineBusy(ms: number): Promise<number | undefined> {
  const meter = foreignMeter();
  await new Promise((resolve) => setTimeout(resolve, ms));
  return meter.stop();
}

/** Throws when the upstream or a gateway died: whatever was measured after that is meaningless. */
function assertAlive(phase: string): void {
  const exits = unexpectedExits();
  if (exits.length > 0) throw new Error(`${phase}: ${exits.join('\n')}`);
}

// ---------------------------------------------------------------------------------------------
// Starting the processes
// ---------------------------------------------------------------------------------------------

async function freeClosedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function buildGateway(options: Options): Promise<{ args: string[]; how: string }> {
  const dist = path.join(repoRoot, 'dist/src/main.js');
  const viaTsx = { args: ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')], how: 'node --import tsx src/main.ts' };
  const viaDist = { args: [dist], how: 'node dist/src/main.js' };
  if (!options.build) return existsSync(dist) ? { ...viaDist, how: `${viaDist.how} (not rebuilt: --no-build)` } : viaTsx;
  log('building: npx tsc -p tsconfig.build.json');
  const before = Date.now();
  const tsc = path.join(repoRoot, 'node_modules/typescript/bin/tsc');
  const built = await run('tsc', nodeBin, [tsc, '-p', 'tsconfig.build.json'], { cwd: repoRoot, timeoutMs: 180_000 });
  const fresh = existsSync(dist) && statSync(dist).mtimeMs >= before - 2000;
  if (built.code === 0) return viaDist;
  const errors = (built.stdout + built.stderr).split('\n').slice(0, 10).join('\n');
  if (fresh) {
    log(`WARNING: tsc reported errors (src is being edited?); dist was emitted anyway and is used:\n${errors}`);
    return { ...viaDist, how: `${viaDist.how} (tsc reported type errors)` };
  }
  log(`WARNING: build failed, running src/main.ts through tsx instead:\n${errors}`);
  return viaTsx;
}

interface Started {
  upstream: Managed;
  upstreamOrigin: string;
  us: Managed;
  usOrigin: string;
  usCommand: string;
  portkey?: Managed;
  portkeyOrigin?: string;
  deadIds: string[];
  deadPort: number;
  tmp: string;
}

async function startUpstream(): Promise<{ proc: Managed; origin: string }> {
  const { proc, match } = await start({
    name: 'upstream',
    command: nodeBin,
    args: ['--require', watchPreload, '--import', 'tsx', path.join(benchDir, 'upstream.ts')],
    env: { PATH: childPath, HOME: os.tmpdir() },
    cwd: repoRoot,
    ready: /^(\d+)\s*$/m,
  });
  return { proc, origin: `http://127.0.0.1:${match[1] as string}` };
}

async function startOurs(
  gatewayArgs: string[],
  configPath: string,
  home: string,
  extraArgs: string[] = [],
  extraEnv: Record<string, string> = {},
): Promise<{ proc: Managed; origin: string }> {
  const { proc, match } = await start({
    name: 'interference',
    command: nodeBin,
    args: ['--require', watchPreload, ...extraArgs, ...gatewayArgs],
    env: {
      PATH: childPath,
      HOME: home,
      PORT: '0',
      HOST: '127.0.0.1',
      // The gateway as it ships: request log on (the speed issue's targets are set with it on);
      // `INTERFERENCE_LOG=0 npm run bench` measures it without.
      INTERFERENCE_LOG: process.env.INTERFERENCE_LOG ?? '1',
      // What metrics cost: `INTERFERENCE_METRICS=off npm run bench` runs the gateway without them.
      INTERFERENCE_METRICS: process.env.INTERFERENCE_METRICS ?? 'on',
      INTERFERENCE_CONFIG: configPath,
      INTERFERENCE_MODELS_DIR: path.join(home, 'models'),
      INTERFERENCE_IMAGES_DIR: path.join(home, 'images'),
      ...extraEnv,
    },
    cwd: home,
    ready: /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    // The request log (one line per request on stderr) goes to a file, as a service's would.
    stderrFile: path.join(home, `interference-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.stderr.log`),
  });
  return { proc, origin: match[1] as string };
}

async function startPortkey(home: string): Promise<{ proc: Managed; origin: string }> {
  const { proc, match } = await start({
    name: 'portkey',
    command: nodeBin,
    args: [
      '--require',
      watchPreload,
      '--require',
      loopbackPreload,
      path.join(repoRoot, 'node_modules/@portkey-ai/gateway/build/start-server.js'),
      '--headless',
      '--port=0',
    ],
    env: { PATH: childPath, HOME: home, LOOPBACK_PORT_ZERO: '1' },
    cwd: home,
    ready: /loopback: listening on 127\.0\.0\.1:(\d+)/,
  });
  return { proc, origin: `http://127.0.0.1:${match[1] as string}` };
}

// ---------------------------------------------------------------------------------------------
// Failover
// ---------------------------------------------------------------------------------------------

interface FailoverResult {
  /** `Bench` alone, interleaved with the failover requests. */
  baseline?: Stats;
  /** `DeadN Bench` where DeadN was tried (connection refused) before Bench answered. */
  tried?: Stats;
  /** `DeadN Bench` where DeadN's breaker was open, so it was skipped. */
  skipped?: Stats;
  triedCount: number;
  skippedCount: number;
  failed: number;
  errors: string[];
  attempts: Record<string, number>;
  /** Portkey fallback config whose target 0 refuses connections, and the same with target 0 healthy. */
  portkeyHealthy?: Stats;
  portkeyFallback?: Stats;
  portkeyFailed?: number;
}

async function measureFailover(started: Started, options: Options): Promise<FailoverResult> {
  const pool = new Pool(started.usOrigin, { connections: 1, pipelining: 1, keepAliveTimeout: 60_000 });
  const baseline: Sample[] = [];
  const failover: Sample[] = [];
  try {
    for (let i = 0; i < 50; i++) await once(pool, usRequest('json'));
    // Every dead provider until its breaker opens (plus one more request to see it skipped) …
    for (const id of started.deadIds) {
      for (let i = 0; i < 4; i++) {
        baseline.push(await once(pool, usRequest('json')));
        failover.push(await once(pool, usRequest('json', `${id} Bench`)));
      }
    }
    // … then the first one again and again: steady state (breaker open, or re-probed).
    const first = started.deadIds[0] as string;
    for (let i = 0; i < options.failoverSamples; i++) {
      baseline.push(await once(pool, usRequest('json')));
      failover.push(await once(pool, usRequest('json', `${first} Bench`)));
    }
  } finally {
    await pool.close();
  }
  const attempts: Record<string, number> = {};
  const tried: number[] = [];
  const skipped: number[] = [];
  for (const sample of failover) {
    const described = (sample.attempts ?? '').replace(/Dead\d*/g, 'Dead');
    attempts[described] = (attempts[described] ?? 0) + 1;
    if (!sample.ok) continue;
    if (/Dead\d*=(connection|timeout|network)/.test(sample.attempts ?? '')) tried.push(sample.totalMs);
    else if (/Dead\d*=circuit/.test(sample.attempts ?? '')) skipped.push(sample.totalMs);
    else if (sample.attempts !== undefined && /Dead\d*=/.test(sample.attempts)) tried.push(sample.totalMs);
  }
  const result: FailoverResult = {
    triedCount: tried.length,
    skippedCount: skipped.length,
    failed: failover.filter((s) => !s.ok).length,
    errors: [...new Set(failover.filter((s) => !s.ok).map((s) => s.error ?? ''))].slice(0, 3),
    attempts,
  };
  const base = stats(baseline.filter((s) => s.ok).map((s) => s.totalMs));
  if (base) result.baseline = base;
  const triedStats = stats(tried);
  if (triedStats) result.tried = triedStats;
  const skippedStats = stats(skipped);
  if (skippedStats) result.skipped = skippedStats;

  if (started.portkeyOrigin !== undefined) {
    const live = { provider: 'openai', api_key: 'sk-bench', custom_host: `${started.upstreamOrigin}/v1` };
    const dead = { ...live, custom_host: `http://127.0.0.1:${started.deadPort}/v1` };
    const healthyConfig = JSON.stringify({ strategy: { mode: 'fallback' }, targets: [live, live] });
    const fallbackConfig = JSON.stringify({ strategy: { mode: 'fallback' }, targets: [dead, live] });
    const samples = options.quick ? 50 : 200;
    const measured = await measureSequential(
      [
        { key: 'healthy', origin: started.portkeyOrigin, request: portkeyRequest('json', started.upstreamOrigin, healthyConfig), samples, warmup: 20 },
        { key: 'fallback', origin: started.portkeyOrigin, request: portkeyRequest('json', started.upstreamOrigin, fallbackConfig), samples, warmup: 20 },
      ],
      2,
      () => undefined,
    );
    const healthy = measured.get('healthy');
    const fallback = measured.get('fallback');
    if (healthy?.total) result.portkeyHealthy = healthy.total;
    if (fallback?.total) result.portkeyFallback = fallback.total;
    result.portkeyFailed = (healthy?.failed ?? 0) + (fallback?.failed ?? 0);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Shared state: the same gateway with REDIS_URL unset and set
// ---------------------------------------------------------------------------------------------

/** One pair of fresh gateways on one config, REDIS_URL unset / set, measured in alternating runs. */
interface RedisPair {
  /** JSON at c=N through a fresh gateway, REDIS_URL unset / set: medians of the runs below. */
  without?: LoadResult;
  with?: LoadResult;
  /** rps with REDIS_URL over rps without, the median over the pairs. The bar (shared-state issue): ≥ 0.90, under 10% cost. */
  rpsRatio?: number;
  /** rps set / unset within each pair of adjacent runs. */
  pairRatios?: number[];
  /** Each autocannon run, in the order made (unset and set alternate, so drift hits both). */
  runs: Array<{ redis: boolean; rps: number; p99: number; gatewayCpuPerRequestUs?: number; foreignCpu?: number }>;
  /** Commands Redis processed per request the gateway answered during the REDIS_URL runs. */
  redisCommandsPerRequest?: number;
  /** Of those, the script calls (EVAL / EVALSHA) per request: the round trips the limiter makes. */
  redisScriptsPerRequest?: number;
  /** Connections the gateway with REDIS_URL held open to Redis after its runs (0: it never connected). */
  redisClients?: number;
  /** redis-server's own CPU per request in those runs, µs (it competes for the same 2 cores). */
  redisCpuPerRequestUs?: number;
}

/**
 * The unlimited pair at the top level (the row as it was first measured), the limited-key pair
 * under `limited`: the same measurement with a listed key whose limits make every request go
 * through the limiter, in memory (unset) or as Lua scripts in Redis (set).
 */
interface RedisComparison extends RedisPair {
  /** Why nothing was measured (no redis-server on this machine), when nothing was. */
  skipped?: string;
  redisServer?: string;
  limited?: RedisPair & { key: string; limits: { requestsPerMinute: number; tokensPerMinute: number } };
}

/**
 * The listed key of the limited pair. The limits are the schema's maximum: never reached, so every
 * request is admitted, but both are set, so that each request pays for admission (requests per
 * minute) and for token accounting after the answer (tokens per minute) — the full limiter path.
 */
const LIMITED_KEY = { name: 'bench', secret: 'ik-bench-limited-key', limits: { requestsPerMinute: 1_000_000_000, tokensPerMinute: 1_000_000_000 } };

/** redis-server: BENCH_REDIS_SERVER, else Debian's package, else the first on PATH. */
function findRedisServer(): string | undefined {
  const explicit = process.env.BENCH_REDIS_SERVER;
  if (explicit !== undefined && explicit !== '') return explicit;
  for (const dir of ['/usr/bin', ...childPath.split(path.delimiter)]) {
    const candidate = path.join(dir, 'redis-server');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return undefined;
}

/**
 * INFO's total_commands_processed, the script calls among them (commandstats) and
 * connected_clients (redis-cli's own connection not counted), through redis-cli next to
 * redis-server; undefined without one.
 */
function redisInfo(server: string, port: number): { commands: number; scripts: number; clients: number } | undefined {
  const cli = path.join(path.dirname(server), 'redis-cli');
  if (!existsSync(cli)) return undefined;
  try {
    // `all`: the default sections leave out commandstats.
    const info = execFileSync(cli, ['-h', '127.0.0.1', '-p', String(port), 'info', 'all'], { encoding: 'utf8', timeout: 5000 });
    const commands = /^total_commands_processed:(\d+)/m.exec(info);
    const clients = /^connected_clients:(\d+)/m.exec(info);
    let scripts = 0;
    for (const match of info.matchAll(/^cmdstat_(?:eval|evalsha|eval_ro|evalsha_ro|fcall|fcall_ro):calls=(\d+)/gm)) scripts += Number(match[1]);
    return commands && clients ? { commands: Number(commands[1]), scripts, clients: Number(clients[1]) - 1 } : undefined;
  } catch {
    return undefined;
  }
}

/**
 * What sharing state through Redis costs: a redis-server started here (no persistence), then two
 * pairs of fresh gateways, each pair one without REDIS_URL and one with it, JSON at c=N:
 *
 * - unlimited: the bench config as it is. No limits, so the gateway has no reason to talk to
 *   Redis on the healthy path; this shows what setting REDIS_URL costs by itself.
 * - limited: the same config plus one listed key with limits, sent by every request. Now each
 *   request is admitted by the limiter and its tokens counted afterwards: in memory without
 *   REDIS_URL, as Lua scripts in Redis with it. This is what Redis costs when it is used.
 *
 * The pairs run one after the other (never four gateways at once on two cores).
 */
async function measureRedis(gatewayArgs: string[], configPath: string, started: Started, options: Options): Promise<RedisComparison> {
  const server = findRedisServer();
  if (server === undefined) {
    log('shared state: no redis-server (apt-get install redis-server, or BENCH_REDIS_SERVER); left out');
    return { skipped: 'no redis-server found', runs: [] };
  }
  const port = await freeClosedPort();
  const redisArgs = ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'no'];
  // parent-watch.cjs cannot ride along in a C program: setpriv's parent-death signal gives the
  // same guarantee (redis-server dies with the runner, even after a SIGKILL) where it exists.
  const setpriv = existsSync('/usr/bin/setpriv') ? '/usr/bin/setpriv' : undefined;
  const redis = await start({
    name: 'redis-server',
    command: setpriv ?? server,
    args: setpriv ? ['--pdeathsig', 'KILL', '--', server, ...redisArgs] : redisArgs,
    env: { PATH: childPath, HOME: started.tmp },
    cwd: started.tmp,
    ready: /Ready to accept connections/,
  });
  let version = '';
  try {
    version = execFileSync(server, ['--version'], { encoding: 'utf8' })
      .trim()
      .replace(/^Redis server v=(\S+).*/s, '$1');
  } catch {
    // version unknown
  }
  log(`shared state: redis-server ${version} on 127.0.0.1:${port} (pid ${redis.proc.pid})`);
  const context: RedisPairContext = { gatewayArgs, started, options, server, port, redisPid: redis.proc.pid };
  try {
    const unlimited = await measureRedisPair(context, { label: 'unlimited', configPath, request: usRequest('json') });

    // The bench config plus the listed key (by its SHA-256, as the config file wants it). Listed
    // keys alone turn authentication on, so the load sends the key as a bearer token.
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    const keyHash = `sha256:${createHash('sha256').update(LIMITED_KEY.secret).digest('hex')}`;
    const limitedConfigPath = path.join(started.tmp, 'interference.limited.config.json');
    writeFileSync(limitedConfigPath, JSON.stringify({ ...config, keys: [{ name: LIMITED_KEY.name, keyHash, limits: LIMITED_KEY.limits }] }));
    const plain = usRequest('json');
    const request: BenchRequest = { ...plain, headers: { ...plain.headers, authorization: `Bearer ${LIMITED_KEY.secret}` } };
    const limited = await measureRedisPair(context, { label: 'limited key', configPath: limitedConfigPath, request, limited: true });

    return { redisServer: `redis-server ${version}`, ...unlimited, limited: { key: LIMITED_KEY.name, limits: LIMITED_KEY.limits, ...limited } };
  } finally {
    await stop(redis.proc);
  }
}

interface RedisPairContext {
  gatewayArgs: string[];
  started: Started;
  options: Options;
  server: string;
  port: number;
  redisPid: number;
}

/**
 * One pair: two fresh gateways on `configPath`, one without REDIS_URL and one with it. Fresh
 * processes, so that neither carries the main run's breakers or heap; both run the whole time, and
 * the runs alternate unset/set, set/unset, … so that a slow stretch of the machine lands on both.
 * Whatever the gateway does with REDIS_URL set is what is measured.
 */
async function measureRedisPair(
  context: RedisPairContext,
  pair: { label: string; configPath: string; request: BenchRequest; limited?: boolean },
): Promise<RedisPair> {
  const { gatewayArgs, started, options, server, port } = context;
  const slug = pair.label.replace(/\W+/g, '-');
  const homes = { off: path.join(started.tmp, `redis-${slug}-unset`), on: path.join(started.tmp, `redis-${slug}-set`) };
  for (const home of Object.values(homes)) mkdirSync(home, { recursive: true });
  const [off, on] = await Promise.all([
    startOurs(gatewayArgs, pair.configPath, homes.off),
    startOurs(gatewayArgs, pair.configPath, homes.on, [], { REDIS_URL: `redis://127.0.0.1:${port}` }),
  ]);
  const result: RedisPair = { runs: [] };
  try {
    for (const gateway of [off, on]) {
      const where = `shared state (${pair.label}): the gateway ${gateway === on ? 'with' : 'without'} REDIS_URL`;
      const pool = new Pool(gateway.origin, { connections: 1 });
      const sample = await once(pool, pair.request);
      // The limited pair must really go through the limiter: its answers carry the key's
      // x-ratelimit-* headers (a config the gateway ignored would measure nothing).
      const limitHeader = pair.limited
        ? await pool.request({ path: pair.request.path, method: 'POST', headers: pair.request.headers, body: pair.request.body }).then(async (response) => {
            await response.body.dump();
            return response.headers['x-ratelimit-limit-requests'];
          })
        : undefined;
      await pool.close();
      if (!sample.ok) throw new Error(`${where} fails: ${sample.error}`);
      if (pair.limited && limitHeader !== String(LIMITED_KEY.limits.requestsPerMinute))
        throw new Error(`${where} does not apply the key's limits (x-ratelimit-limit-requests: ${String(limitHeader)})`);
      await autocannon(gateway.origin, pair.request, options.warmup, options.connections, { upstream: started.upstream });
    }
    assertAlive(`shared state warm-up (${pair.label})`);
    const pairs = options.quick ? 1 : 2;
    const loads = { off: [] as LoadResult[], on: [] as LoadResult[] };
    let commands = 0;
    let scripts = 0;
    let redisCpu = 0;
    let onRequests = 0;
    /** One run against one of the two, repeated (bounded by --retries) while other processes disturb it; the least disturbed is kept. */
    const measure = async (redisSet: boolean): Promise<LoadResult> => {
      const gateway = redisSet ? on : off;
      let kept: LoadResult | undefined;
      for (let attempt = 0; attempt <= options.retries; attempt++) {
        log(`load: Interference JSON, ${pair.label}, REDIS_URL ${redisSet ? 'set' : 'unset'}, c=${options.connections}, ${options.duration}s`);
        const info0 = redisSet ? redisInfo(server, port) : undefined;
        const cpu0 = redisSet ? cpuSeconds(context.redisPid) : undefined;
        const measured = await autocannon(gateway.origin, pair.request, options.duration, options.connections, {
          gateway: gateway.proc,
          upstream: started.upstream,
        });
        assertAlive(`load ${pair.label} REDIS_URL ${redisSet ? 'set' : 'unset'}`);
        measured.runs = attempt + 1;
        if (redisSet) {
          const info1 = redisInfo(server, port);
          const cpu1 = cpuSeconds(context.redisPid);
          // Minus the first INFO, which counts itself.
          if (info0 !== undefined && info1 !== undefined) {
            commands += info1.commands - info0.commands - 1;
            scripts += info1.scripts - info0.scripts;
          }
          if (info1 !== undefined) result.redisClients = info1.clients;
          if (cpu0 !== undefined && cpu1 !== undefined) redisCpu += cpu1 - cpu0;
          onRequests += measured.requests;
        }
        log(
          `  ${int(measured.rps)} rps, p50 ${measured.p50} p99 ${measured.p99} ms, non-2xx ${measured.non2xx}, errors ${measured.errors}, ` +
            `gateway CPU ${int(measured.gatewayCpuPerRequestUs)} µs/req, other processes ${pct(measured.foreignCpu)}`,
        );
        if (kept === undefined || (measured.foreignCpu ?? 0) < (kept.foreignCpu ?? 0)) kept = measured;
        if ((measured.foreignCpu ?? 0) <= DISTURBED) break;
        log(
          `  WARNING: other processes used ${pct(measured.foreignCpu)} of a core${attempt < options.retries ? '; running it again' : '; keeping the least disturbed run'}`,
        );
      }
      const run = kept as LoadResult;
      result.runs.push({
        redis: redisSet,
        rps: run.rps,
        p99: run.p99,
        ...(run.gatewayCpuPerRequestUs !== undefined ? { gatewayCpuPerRequestUs: run.gatewayCpuPerRequestUs } : {}),
        ...(run.foreignCpu !== undefined ? { foreignCpu: run.foreignCpu } : {}),
      });
      (redisSet ? loads.on : loads.off).push(run);
      return run;
    };
    const pairRatios: number[] = [];
    for (let index = 0; index < pairs; index++) {
      // Unset then set, then set then unset, …: a machine getting slower or faster over the
      // comparison weighs on both sides.
      const first = index % 2 === 1;
      const a = await measure(first);
      const b = await measure(!first);
      const [withRedis, withoutRedis] = first ? [a, b] : [b, a];
      pairRatios.push(withRedis.rps / withoutRedis.rps);
    }
    result.without = combineLoad(loads.off);
    result.with = combineLoad(loads.on);
    // The ratio within each pair (two runs next to each other in time), then their median: less
    // sensitive to a slow stretch than the ratio of the two medians.
    result.pairRatios = pairRatios;
    result.rpsRatio = finite(median(pairRatios) ?? NaN);
    if (onRequests > 0) {
      result.redisCommandsPerRequest = commands / onRequests;
      result.redisScriptsPerRequest = scripts / onRequests;
      result.redisCpuPerRequestUs = (redisCpu * 1e6) / onRequests;
    }
    log(
      `  ${pair.label}, REDIS_URL set / unset: ${ratio(result.rpsRatio, 1)} rps (bar: ≥ 0.90x); ` +
        `${result.redisCommandsPerRequest?.toFixed(3) ?? '—'} Redis commands (${result.redisScriptsPerRequest?.toFixed(3) ?? '—'} scripts) ` +
        `and ${int(result.redisCpuPerRequestUs)} µs of redis-server CPU per request, ${result.redisClients ?? '—'} connection(s) from the gateway`,
    );
  } finally {
    await stop(off.proc);
    await stop(on.proc);
  }
  return result;
}

/**
 * The shared-state table: JSON at c=N with REDIS_URL unset and set, and their ratio, for the
 * unlimited pair and (when measured) the limited-key pair.
 */
function redisTable(redis: RedisComparison, options: Options): string {
  if (redis.skipped !== undefined || redis.without === undefined || redis.with === undefined)
    return `Shared state (REDIS_URL): not measured (${redis.skipped ?? 'no result'}).`;
  const server = `${redis.redisServer ?? 'redis-server'}, 127.0.0.1, no persistence`;
  const row = (what: string, l: LoadResult, commands: string, redisCpu: string): string[] => [
    what,
    int(l.rps),
    `${l.p50} / ${l.p99}`,
    int(l.gatewayCpuPerRequestUs),
    commands,
    redisCpu,
    String(l.non2xx + l.errors),
  ];
  const commands = (pair: RedisPair): string =>
    pair.redisCommandsPerRequest === undefined
      ? '—'
      : `${pair.redisCommandsPerRequest.toFixed(3)}${pair.redisScriptsPerRequest ? ` (${pair.redisScriptsPerRequest.toFixed(3)} scripts)` : ''}`;
  /** The three rows of one pair: unset, set, and set / unset against the bar. */
  const rows = (prefix: string, pair: RedisPair, setNote: string): string[][] => {
    if (pair.without === undefined || pair.with === undefined) return [];
    const ratioValue = pair.rpsRatio;
    const verdict = ratioValue === undefined ? 'n/a' : ratioValue >= 0.9 ? 'met' : 'MISSED';
    return [
      row(`${prefix}REDIS_URL unset${prefix === '' ? '' : ' (limiter in memory)'}`, pair.without, '—', '—'),
      row(`${prefix}REDIS_URL set (${setNote})`, pair.with, commands(pair), int(pair.redisCpuPerRequestUs)),
      [
        `${prefix}set / unset`,
        ratio(ratioValue, 1),
        '',
        ratio(pair.with.gatewayCpuPerRequestUs, pair.without.gatewayCpuPerRequestUs),
        '',
        '',
        `goal ≥ 0.90x rps: ${verdict}`,
      ],
    ];
  };
  const limited = redis.limited;
  const pairs: RedisPair[] = limited ? [redis, limited] : [redis];
  const disturbed = pairs.some((pair) => pair.runs.some((run) => (run.foreignCpu ?? 0) > DISTURBED));
  const ratios = (pair: RedisPair): string => (pair.pairRatios ?? []).map((r) => ratio(r, 1)).join(', ');
  return [
    table(
      [
        `shared state, Interference JSON c=${options.connections}`,
        'rps',
        'p50 / p99 ms',
        'gateway CPU µs/req',
        'Redis commands/req',
        'redis-server CPU µs/req',
        'bad responses',
      ],
      [...rows('', redis, server), ...(limited ? rows(`limited key: `, limited, `limiter in Redis, ${server}`) : [])],
    ),
    '',
    `Each pair: two fresh gateways, same config, both running throughout; ${redis.runs.length} runs of ${options.duration} s alternating unset/set (rps etc.: medians; ` +
      `set / unset: the median of the ratios within each pair of runs, ${ratios(redis)}${limited ? `; limited key: ${ratios(limited)}` : ''}). ` +
      `The gateway with REDIS_URL held ${redis.redisClients ?? '?'} connection(s) to Redis` +
      (limited ? ` (limited key: ${limited.redisClients ?? '?'}).` : '.') +
      (limited
        ? ` Limited key: the config lists one key (\`${limited.key}\`, ${int(limited.limits.requestsPerMinute)} requests and ${int(limited.limits.tokensPerMinute)} tokens per minute, never reached) and every request sends it, ` +
          'so every request is admitted by the limiter and its tokens counted: in memory without REDIS_URL, by Lua scripts in Redis with it. ' +
          'Redis commands/req is INFO total_commands_processed, which also counts the commands a script runs; in brackets the script calls (EVALSHA), one round trip each.'
        : '') +
      (disturbed ? ' **Disturbed:** other processes used over 15% of a core during at least one of these runs.' : ''),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Profile (optional)
// ---------------------------------------------------------------------------------------------

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

interface ProfileSummary {
  file: string;
  totalMs: number;
  top: Array<{ fn: string; where: string; selfPct: number }>;
  categories: Record<string, number>;
}

function category(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'GC';
  if (fn === '(program)') return 'program (native, unattributed)';
  if (url.includes('/dist/src/') || url.includes('/src/')) return 'Interference (src/)';
  if (url.includes('node_modules/undici/')) return 'undici (npm)';
  if (url.startsWith('node:internal/deps/undici')) return 'undici (bundled)';
  if (url.startsWith('node:')) return 'node core (JS)';
  if (url === '') return 'native / builtins';
  return 'other';
}

function summarizeProfile(file: string): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  for (const node of profile.nodes) byId.set(node.id, node);
  const self = new Map<string, { fn: string; where: string; us: number; cat: string }>();
  let total = 0;
  profile.samples.forEach((id, index) => {
    const node = byId.get(id);
    const delta = profile.timeDeltas[index] ?? 0;
    if (node === undefined) return;
    total += delta;
    const { functionName, url, lineNumber } = node.callFrame;
    const fn = functionName || '(anonymous)';
    const where = url === '' ? '' : `${url.replace(/^file:\/\//, '').replace(repoRoot + '/', '')}:${lineNumber + 1}`;
    const id2 = `${fn} ${where}`;
    const entry = self.get(id2) ?? { fn, where, us: 0, cat: category(url, fn) };
    entry.us += delta;
    self.set(id2, entry);
  });
  const categories: Record<string, number> = {};
  for (const entry of self.values()) categories[entry.cat] = (categories[entry.cat] ?? 0) + (100 * entry.us) / total;
  const top = [...self.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, 20)
    .map((entry) => ({ fn: entry.fn, where: entry.where, selfPct: (100 * entry.us) / total }));
  return { file, totalMs: total / 1000, top, categories };
}

async function profileOurs(gatewayArgs: string[], configPath: string, started: Started, options: Options): Promise<ProfileSummary | undefined> {
  const dir = path.join(started.tmp, 'profile');
  mkdirSync(dir, { recursive: true });
  log(`profile: a second Interference process with --cpu-prof, c=${options.connections} JSON for ${options.duration}s`);
  const { proc, origin } = await startOurs(gatewayArgs, configPath, started.tmp, ['--cpu-prof', `--cpu-prof-dir=${dir}`]);
  try {
    await autocannon(origin, usRequest('json'), options.duration, options.connections, { gateway: proc, upstream: started.upstream });
  } finally {
    await stop(proc, 10_000);
  }
  const file = readdirSync(dir).find((name) => name.endsWith('.cpuprofile'));
  if (file === undefined) {
    log('profile: no .cpuprofile written');
    return undefined;
  }
  const resultsDir = path.join(benchDir, 'results');
  const kept = path.join(resultsDir, 'interference-c50-json.cpuprofile');
  writeFileSync(kept, readFileSync(path.join(dir, file)));
  return summarizeProfile(kept);
}

// ---------------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------------

function ms(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return Math.abs(value) < 10 ? value.toFixed(3) : value.toFixed(1);
}

function signed(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return `${value >= 0 ? '+' : '−'}${ms(Math.abs(value))}`;
}

function int(value: number | undefined): string {
  if (value === undefined || !Number.isFinite(value)) return '—';
  return Math.round(value).toLocaleString('en-US');
}

function mb(value: number | undefined): string {
  return value === undefined ? '—' : value.toFixed(0);
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0) return '—';
  const r = a / b;
  return r >= 10 ? `${r.toFixed(1)}x` : `${r.toFixed(2)}x`;
}

function pct(value: number | undefined): string {
  return value === undefined ? '—' : `${(value * 100).toFixed(0)}%`;
}

function table(header: string[], rows: string[][]): string {
  const lines = [`| ${header.join(' | ')} |`, `|${header.map((_, i) => (i === 0 ? '---' : '--:')).join('|')}|`];
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`);
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

interface Machine {
  cpu: string;
  cores: number;
  memoryGB: number;
  /** The Node that runs the gateways, the fake and autocannon. */
  node: string;
  nodePath: string;
  /** The Node that runs this script (the c=1 client). */
  runnerNode: string;
  kernel: string;
}

function machine(): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const match = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (match) cpu = (match[1] as string).trim();
  } catch {
    // keep os.cpus()
  }
  let node = process.version;
  try {
    node = execFileSync(nodeBin, ['--version'], { encoding: 'utf8' }).trim();
  } catch {
    // keep ours
  }
  return {
    cpu,
    // The machine's cores, not this process's: under --pin the runner itself is pinned to one.
    cores: os.cpus().length,
    memoryGB: Math.round(os.totalmem() / 2 ** 30),
    node,
    nodePath: nodeBin,
    runnerNode: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

function version(packageDir: string): string {
  try {
    return (JSON.parse(readFileSync(path.join(repoRoot, packageDir, 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '?';
  }
}

async function main(): Promise<void> {
  installCleanup(log);
  const options = parseOptions(process.argv.slice(2), process.env);
  if (options.pin) pinProcesses((name) => (measuredProcesses.has(name) ? 1 : 0), 0);
  const host = machine();
  const date = new Date().toISOString();
  log(
    `${host.cpu}, ${host.cores} cores, node ${host.node}; c=${options.connections}, ${options.duration}s per run` +
      `${options.measureRounds > 1 ? `, ${options.measureRounds} rounds (medians)` : ''}${options.quick ? ' (quick)' : ''}` +
      `${options.skipPortkey ? ', Portkey skipped' : ''}${options.skipProxies ? ', minimal proxies skipped' : ''}${options.skipRedis ? ', Redis skipped' : ''}` +
      `${options.pin ? ', pinned (targets on core 1, load, c=1 client, fake and Redis on core 0)' : ''}`,
  );
  const resultsDir = path.join(benchDir, 'results');
  mkdirSync(resultsDir, { recursive: true });
  const busyBefore = await machineBusy(1000);
  if (busyBefore !== undefined && busyBefore > DISTURBED) {
    log(`WARNING: the machine is already busy (${pct(busyBefore)} of a core used by other processes); results will be disturbed`);
  }

  const gateway = await buildGateway(options);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'interference-bench-'));
  // Also on Ctrl-C, when the cleanup handler exits before `finally` runs.
  process.on('exit', () => rmSync(tmp, { recursive: true, force: true }));
  let started: Started | undefined;
  try {
    // --- start ---------------------------------------------------------------------------
    const upstream = await startUpstream();
    log(`upstream fake on ${upstream.origin} (pid ${upstream.proc.pid})`);
    const deadPort = await freeClosedPort();
    const deadIds = Array.from({ length: options.deadProviders }, (_, i) => (i === 0 ? 'Dead' : `Dead${i + 1}`));
    const configPath = path.join(tmp, 'interference.config.json');
    writeFileSync(
      configPath,
      JSON.stringify({
        providers: [
          { id: 'Bench', api: 'openai', baseUrl: `${upstream.origin}/v1`, models: ['gpt-4o-mini'] },
          ...deadIds.map((id) => ({ id, api: 'openai', baseUrl: `http://127.0.0.1:${deadPort}/v1`, models: ['gpt-4o-mini'] })),
        ],
      }),
    );
    // dist/src/main.js is started through a symlink with its own name: on a shared machine, a
    // `pkill -f dist/src/main.js` meant for someone else's gateway killed ours mid-run. Node
    // resolves the link, so the same file runs (main.ts compares realpaths to decide it is the CLI).
    if (gateway.args.length === 1 && gateway.args[0]?.endsWith(path.join('dist', 'src', 'main.js'))) {
      const link = path.join(tmp, 'interference-bench-gateway.js');
      symlinkSync(gateway.args[0], link);
      gateway.args = [link];
      gateway.how += `, through the symlink ${path.basename(link)}`;
    }
    const proxyContext = { benchDir, repoRoot, tmp, nodeBin, preloads: [watchPreload], env: { PATH: childPath, HOME: tmp } };
    const [ours, portkey, proxyRaw, proxyParse] = await Promise.all([
      startOurs(gateway.args, configPath, tmp),
      options.skipPortkey ? Promise.resolve(undefined) : startPortkey(tmp),
      options.skipProxies ? Promise.resolve(undefined) : startProxy('raw', upstream.origin, proxyContext),
      options.skipProxies ? Promise.resolve(undefined) : startProxy('parse', upstream.origin, proxyContext),
    ]);
    log(`Interference on ${ours.origin} (pid ${ours.proc.pid}, ${gateway.how})`);
    if (portkey) log(`Portkey ${version('node_modules/@portkey-ai/gateway')} on ${portkey.origin} (pid ${portkey.proc.pid})`);
    if (proxyRaw && proxyParse)
      log(`minimal proxies: raw on ${proxyRaw.origin} (pid ${proxyRaw.proc.pid}), parse on ${proxyParse.origin} (pid ${proxyParse.proc.pid})`);
    started = {
      upstream: upstream.proc,
      upstreamOrigin: upstream.origin,
      us: ours.proc,
      usOrigin: ours.origin,
      usCommand: gateway.how,
      deadIds,
      deadPort,
      tmp,
    };
    if (portkey) {
      started.portkey = portkey.proc;
      started.portkeyOrigin = portkey.origin;
    }

    const targets = new Map<TargetName, Target>();
    targets.set('direct', { name: 'direct', origin: upstream.origin, proc: upstream.proc, request: upstreamRequest });
    // The proxies get exactly what Interference gets (with its `provider` field), so that the
    // rows differ only in what sits between the client and the fake.
    if (proxyRaw) targets.set('proxy-raw', { name: 'proxy-raw', origin: proxyRaw.origin, proc: proxyRaw.proc, request: (mode) => usRequest(mode) });
    if (proxyParse) targets.set('proxy-parse', { name: 'proxy-parse', origin: proxyParse.origin, proc: proxyParse.proc, request: (mode) => usRequest(mode) });
    targets.set('us', { name: 'us', origin: ours.origin, proc: ours.proc, request: (mode) => usRequest(mode) });
    if (portkey)
      targets.set('portkey', { name: 'portkey', origin: portkey.origin, proc: portkey.proc, request: (mode) => portkeyRequest(mode, upstream.origin) });

    // --- idle memory, before any request -------------------------------------------------
    await new Promise((resolve) => setTimeout(resolve, options.quick ? 1500 : 2500));
    const idle: Record<string, number | undefined> = {
      upstream: rssMB(upstream.proc.pid),
      us: rssMB(ours.proc.pid),
      portkey: portkey ? rssMB(portkey.proc.pid) : undefined,
      'proxy-raw': proxyRaw ? rssMB(proxyRaw.proc.pid) : undefined,
      'proxy-parse': proxyParse ? rssMB(proxyParse.proc.pid) : undefined,
    };
    log(
      `idle RSS: Interference ${mb(idle.us)} MB, Portkey ${mb(idle.portkey)} MB, upstream ${mb(idle.upstream)} MB, ` +
        `minimal proxies raw ${mb(idle['proxy-raw'])} / parse ${mb(idle['proxy-parse'])} MB`,
    );

    // --- sanity --------------------------------------------------------------------------
    for (const target of [...targets.values()]) {
      for (const mode of modes) {
        const pool = new Pool(target.origin, { connections: 1 });
        const sample = await once(pool, target.request(mode));
        await pool.close();
        if (!sample.ok) {
          if (target.name === 'portkey') {
            log(`WARNING: Portkey ${mode} does not work (${sample.error}); Portkey is left out of this run`);
            targets.delete('portkey');
            break;
          }
          throw new Error(`${label[target.name]} ${mode}: ${sample.error}`);
        }
      }
    }
    const active = targetNames.filter((name) => targets.has(name));
    assertAlive('sanity check');

    // --- warm-up -------------------------------------------------------------------------
    log(`warm-up: ${options.warmup}s c=${options.connections} per target and mode`);
    for (const mode of modes) {
      for (const name of active) {
        const target = targets.get(name) as Target;
        await autocannon(target.origin, target.request(mode), options.warmup, options.connections, { upstream: upstream.proc });
      }
    }

    assertAlive('warm-up');

    // --- c=1 and c=50, repeated --rounds times; the report takes the median of each figure ----
    const sequentialTargets: SequentialTarget[] = [];
    for (const mode of modes) {
      for (const name of active) {
        const target = targets.get(name) as Target;
        sequentialTargets.push({
          key: key(name, mode),
          origin: target.origin,
          request: target.request(mode),
          samples: name === 'portkey' && mode === 'sse' ? options.portkeyStreamSamples : options.samples,
          warmup: name === 'portkey' && mode === 'sse' ? Math.min(20, options.sequentialWarmup) : options.sequentialWarmup,
        });
      }
    }
    const sequentialRounds = new Map<string, SequentialResult[]>();
    const loadRounds = new Map<string, LoadResult[]>();
    let sequentialForeign: number | undefined;
    for (let round = 1; round <= options.measureRounds; round++) {
      // Each round measures c=1 and then c=50, so that a slow stretch of the machine hits one
      // round of everything rather than every round of one phase.
      if (options.measureRounds > 1) log(`round ${round}/${options.measureRounds}`);

      // --- one connection, µs -------------------------------------------------------------
      log(`c=1: ${options.samples} requests per target and mode (Portkey streams: ${options.portkeyStreamSamples}), ${options.rounds} interleaved rounds`);
      const sequentialMeter = foreignMeter();
      const sequential = await measureSequential(sequentialTargets, options.rounds, log);
      const foreignNow = sequentialMeter.stop();
      if (foreignNow !== undefined) sequentialForeign = Math.max(sequentialForeign ?? 0, foreignNow);
      log(`  other processes during c=1: ${pct(foreignNow)} of a core`);
      if ((foreignNow ?? 0) > DISTURBED) log(`  WARNING: c=1 latencies were measured while other processes used ${pct(foreignNow)} of a core`);
      for (const [name, result] of sequential) {
        sequentialRounds.set(name, [...(sequentialRounds.get(name) ?? []), result]);
        log(
          `  ${name.padEnd(17)} p50 ${ms(result.total?.p50)} p99 ${ms(result.total?.p99)} ms` +
            (result.firstEvent ? `, first event p50 ${ms(result.firstEvent.p50)} ms` : '') +
            (result.failed > 0 ? `, ${result.failed} FAILED: ${result.errors.join('; ')}` : ''),
        );
      }

      assertAlive('c=1 latency');

      // --- c=50 load --------------------------------------------------------------------
      for (const mode of modes) {
        for (const name of active) {
          const target = targets.get(name) as Target;
          log(`load: ${label[name]} ${mode}, c=${options.connections}, ${options.duration}s`);
          const watch = name === 'direct' ? { upstream: upstream.proc } : { upstream: upstream.proc, gateway: target.proc };
          let result: LoadResult | undefined;
          // On a shared machine: a run disturbed by other processes is repeated (bounded), keeping the least disturbed.
          for (let attempt = 0; attempt <= options.retries; attempt++) {
            const measured = await autocannon(target.origin, target.request(mode), options.duration, options.connections, watch);
            assertAlive(`load ${label[name]} ${mode}`);
            measured.runs = attempt + 1;
            log(
              `  ${int(measured.rps)} rps, p50 ${measured.p50} p99 ${measured.p99} ms, non-2xx ${measured.non2xx}, errors ${measured.errors}` +
                (measured.gatewayCpu !== undefined ? `, gateway CPU ${pct(measured.gatewayCpu)} (${int(measured.gatewayCpuPerRequestUs)} µs/req)` : '') +
                `, upstream CPU ${pct(measured.upstreamCpu)} (${int(measured.upstreamCpuPerRequestUs)} µs/req), autocannon CPU ${pct(measured.loadgenCpu)}, other processes ${pct(measured.foreignCpu)}`,
            );
            if (result === undefined || (measured.foreignCpu ?? 0) < (result.foreignCpu ?? 0)) result = { ...measured };
            if ((measured.foreignCpu ?? 0) <= DISTURBED) break;
            log(
              `  WARNING: processes the bench did not start used ${pct(measured.foreignCpu)} of a core during this run${attempt < options.retries ? '; running it again' : '; keeping the least disturbed run'}`,
            );
          }
          if (result !== undefined) loadRounds.set(key(name, mode), [...(loadRounds.get(key(name, mode)) ?? []), result]);
        }
      }
    }
    const sequential = new Map([...sequentialRounds].map(([name, rounds]) => [name, combineSequential(rounds)] as const));
    const load = new Map([...loadRounds].map(([name, rounds]) => [name, combineLoad(rounds)] as const));

    // --- correctness under concurrency ----------------------------------------------------
    log(`check: ${options.checkRequests} requests at c=${options.connections} per target and mode, every body verified`);
    const checks = new Map<string, ConcurrentCheck>();
    for (const mode of modes) {
      for (const name of active) {
        const target = targets.get(name) as Target;
        const check = await checkConcurrent(target.origin, target.request(mode), options.connections, options.checkRequests);
        checks.set(key(name, mode), check);
        if (check.failed > 0) log(`  ${label[name]} ${mode}: ${check.failed}/${check.requests} FAILED: ${check.errors.join('; ')}`);
      }
    }

    assertAlive('concurrent check');

    // --- failover -------------------------------------------------------------------------
    log(`failover: ${deadIds.length} refusing providers, then ${options.failoverSamples} requests on one`);
    const failover = await measureFailover(started, options);
    log(
      `  tried ${failover.triedCount} (p50 ${ms(failover.tried?.p50)} ms), skipped ${failover.skippedCount} (p50 ${ms(failover.skipped?.p50)} ms), baseline p50 ${ms(failover.baseline?.p50)} ms`,
    );

    assertAlive('failover');

    // --- memory after the run --------------------------------------------------------------
    const after: Record<string, number | undefined> = {
      upstream: rssMB(upstream.proc.pid),
      us: rssMB(ours.proc.pid),
      portkey: portkey ? rssMB(portkey.proc.pid) : undefined,
      'proxy-raw': proxyRaw ? rssMB(proxyRaw.proc.pid) : undefined,
      'proxy-parse': proxyParse ? rssMB(proxyParse.proc.pid) : undefined,
    };
    const peak: Record<string, number | undefined> = {
      upstream: peakRssMB(upstream.proc.pid),
      us: peakRssMB(ours.proc.pid),
      portkey: portkey ? peakRssMB(portkey.proc.pid) : undefined,
      'proxy-raw': proxyRaw ? peakRssMB(proxyRaw.proc.pid) : undefined,
      'proxy-parse': proxyParse ? peakRssMB(proxyParse.proc.pid) : undefined,
    };

    // --- shared state: REDIS_URL unset vs set ------------------------------------------------
    const redis = options.skipRedis ? undefined : await measureRedis(gateway.args, configPath, started, options);

    // --- profile ------------------------------------------------------------------------------
    let profile: ProfileSummary | undefined;
    if (options.profile) {
      await stop(ours.proc);
      if (portkey) await stop(portkey.proc);
      profile = await profileOurs(gateway.args, configPath, started, options);
    }

    // --- report -----------------------------------------------------------------------------
    const report = buildReport({
      options,
      host,
      date,
      gateway: gateway.how,
      busyBefore,
      sequentialForeign,
      active,
      idle,
      after,
      peak,
      load,
      sequential,
      checks,
      failover,
      profile,
      redis,
    });
    // A smoke run must not replace the figures of the last full run (the README's source).
    // A pinned run is the second view of the same code, kept beside the unpinned one.
    const resultsFile = path.join(resultsDir, options.quick ? 'quick.json' : options.pin ? 'pinned.json' : 'latest.json');
    writeFileSync(resultsFile, `${JSON.stringify(report.json, null, 2)}\n`);
    process.stdout.write(`${report.markdown}\n`);
    log(`results written to ${path.relative(repoRoot, resultsFile)}`);
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
    const left = stillRunning();
    if (left.length > 0) log(`WARNING: still running: ${left.join(', ')}`);
    else log(`stopped everything; total ${((performance.now() - startedAt) / 1000).toFixed(0)}s`);
  }
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

interface ReportInput {
  options: Options;
  host: Machine;
  date: string;
  gateway: string;
  /** CPU used by other processes just before the run, share of one core. */
  busyBefore: number | undefined;
  /** The same during the c=1 measurements. */
  sequentialForeign: number | undefined;
  active: TargetName[];
  idle: Record<string, number | undefined>;
  after: Record<string, number | undefined>;
  peak: Record<string, number | undefined>;
  load: Map<string, LoadResult>;
  sequential: Map<string, SequentialResult>;
  checks: Map<string, ConcurrentCheck>;
  failover: FailoverResult;
  profile: ProfileSummary | undefined;
  redis: RedisComparison | undefined;
}

interface TargetCheck {
  target: string;
  goal: string;
  measured: string;
  pass: boolean | null;
}

// ---------------------------------------------------------------------------------------------
// The floor: Interference against the minimal raw pass-through proxy
// ---------------------------------------------------------------------------------------------

/** One row against the raw proxy: rps and CPU as ratios, c=1 latencies as differences (ms). */
interface VersusFloor {
  rpsRatio?: number;
  cpuPerRequestRatio?: number;
  addedP50Ms?: number;
  addedP99Ms?: number;
  addedFirstEventP50Ms?: number;
  addedFirstEventP99Ms?: number;
}

const finite = (value: number): number | undefined => (Number.isFinite(value) ? value : undefined);

function versusFloor(input: ReportInput, name: TargetName, mode: Mode): VersusFloor | undefined {
  const raw = { load: input.load.get(key('proxy-raw', mode)), seq: input.sequential.get(key('proxy-raw', mode)) };
  const row = { load: input.load.get(key(name, mode)), seq: input.sequential.get(key(name, mode)) };
  if (raw.load === undefined || row.load === undefined) return undefined;
  const result: VersusFloor = {
    rpsRatio: finite(row.load.rps / raw.load.rps),
    cpuPerRequestRatio: finite((row.load.gatewayCpuPerRequestUs ?? NaN) / (raw.load.gatewayCpuPerRequestUs ?? NaN)),
    addedP50Ms: finite((row.seq?.total?.p50 ?? NaN) - (raw.seq?.total?.p50 ?? NaN)),
    addedP99Ms: finite((row.seq?.total?.p99 ?? NaN) - (raw.seq?.total?.p99 ?? NaN)),
  };
  if (mode === 'sse') {
    result.addedFirstEventP50Ms = finite((row.seq?.firstEvent?.p50 ?? NaN) - (raw.seq?.firstEvent?.p50 ?? NaN));
    result.addedFirstEventP99Ms = finite((row.seq?.firstEvent?.p99 ?? NaN) - (raw.seq?.firstEvent?.p99 ?? NaN));
  }
  return result;
}

/** The main table's "us vs floor" cell: throughput ratio, and added c=1 latency (first event for SSE). */
function floorCell(input: ReportInput, mode: Mode): string {
  const f = versusFloor(input, 'us', mode);
  if (f === undefined) return '';
  const latency =
    mode === 'json'
      ? `${signed(f.addedP50Ms)} / ${signed(f.addedP99Ms)} ms c=1 p50 / p99`
      : `${signed(f.addedFirstEventP50Ms)} / ${signed(f.addedFirstEventP99Ms)} ms first event p50 / p99`;
  return `${ratio(f.rpsRatio, 1)} rps, ${latency}`;
}

/** Side by side: raw proxy, parse proxy, Interference; then parse and Interference against raw. */
function floorTable(input: ReportInput): { markdown: string; json: Record<string, VersusFloor | undefined> } | undefined {
  if (!input.active.includes('proxy-raw') || !input.active.includes('us')) return undefined;
  const columns = (['proxy-raw', 'proxy-parse', 'us'] as const).filter((name) => input.active.includes(name));
  const against = columns.filter((name) => name !== 'proxy-raw');
  const rows: string[][] = [];
  const add = (what: string, mode: Mode, value: (name: TargetName) => string, versus: (f: VersusFloor | undefined) => string): void => {
    rows.push([what, ...columns.map(value), ...against.map((name) => versus(versusFloor(input, name, mode)))]);
  };
  const load = (name: TargetName, mode: Mode): LoadResult | undefined => input.load.get(key(name, mode));
  const seq = (name: TargetName, mode: Mode): SequentialResult | undefined => input.sequential.get(key(name, mode));
  for (const mode of modes) {
    const upper = mode === 'json' ? 'JSON' : 'SSE';
    add(
      `${upper} rps, c=${input.options.connections}`,
      mode,
      (name) => int(load(name, mode)?.rps),
      (f) => ratio(f?.rpsRatio, 1),
    );
  }
  add(
    'JSON c=1 p50 ms',
    'json',
    (name) => ms(seq(name, 'json')?.total?.p50),
    (f) => signed(f?.addedP50Ms),
  );
  add(
    'JSON c=1 p99 ms',
    'json',
    (name) => ms(seq(name, 'json')?.total?.p99),
    (f) => signed(f?.addedP99Ms),
  );
  add(
    'SSE first event c=1 p50 ms',
    'sse',
    (name) => ms(seq(name, 'sse')?.firstEvent?.p50),
    (f) => signed(f?.addedFirstEventP50Ms),
  );
  add(
    'SSE first event c=1 p99 ms',
    'sse',
    (name) => ms(seq(name, 'sse')?.firstEvent?.p99),
    (f) => signed(f?.addedFirstEventP99Ms),
  );
  for (const mode of modes) {
    const upper = mode === 'json' ? 'JSON' : 'SSE';
    add(
      `CPU µs/req, ${upper} c=${input.options.connections}`,
      mode,
      (name) => int(load(name, mode)?.gatewayCpuPerRequestUs),
      (f) => ratio(f?.cpuPerRequestRatio, 1),
    );
  }
  const markdown = table(['against the floor', ...columns.map((name) => label[name]), ...against.map((name) => `${label[name]} vs raw`)], rows);
  const json: Record<string, VersusFloor | undefined> = {};
  for (const name of against) for (const mode of modes) json[key(name, mode)] = versusFloor(input, name, mode);
  return { markdown, json };
}

function buildReport(input: ReportInput): { markdown: string; json: Record<string, unknown> } {
  const { options, load, sequential, checks, failover } = input;
  const get = <T>(map: Map<string, T>, target: TargetName, mode: Mode): T | undefined => map.get(key(target, mode));

  // Main table.
  const rows: string[][] = [];
  for (const mode of modes) {
    for (const name of input.active) {
      const l = get(load, name, mode);
      const s = get(sequential, name, mode);
      const d = get(sequential, 'direct', mode);
      const dl = get(load, 'direct', mode);
      const pl = get(load, 'portkey', mode);
      const ps = get(sequential, 'portkey', mode);
      const c = get(checks, name, mode);
      const bad = (l?.non2xx ?? 0) + (l?.errors ?? 0) + (c?.failed ?? 0) + (s?.failed ?? 0);
      const addedP50 = name === 'direct' ? undefined : (s?.total?.p50 ?? NaN) - (d?.total?.p50 ?? NaN);
      const addedP99 = name === 'direct' ? undefined : (s?.total?.p99 ?? NaN) - (d?.total?.p99 ?? NaN);
      const first = mode === 'sse' ? s?.firstEvent?.p50 : undefined;
      const addedFirst = mode === 'sse' && name !== 'direct' ? (first ?? NaN) - (d?.firstEvent?.p50 ?? NaN) : undefined;
      let versusPortkey = '';
      if (name === 'us' && pl !== undefined) {
        const latencyGain = (ps?.total?.p50 ?? NaN) - (s?.total?.p50 ?? NaN);
        versusPortkey = `${ratio(l?.rps, pl.rps)} rps, ${signed(-latencyGain)} ms c=1 p50`;
      }
      const versusFloor = name === 'us' ? floorCell(input, mode) : '';
      rows.push([
        `${label[name]} ${mode === 'json' ? 'JSON' : 'SSE'}`,
        int(l?.rps),
        `${l?.p50 ?? '—'} / ${l?.p99 ?? '—'}`,
        `${ms(s?.total?.p50)} / ${ms(s?.total?.p99)}`,
        name === 'direct' ? '—' : `${signed(addedP50)} / ${signed(addedP99)}`,
        mode === 'sse' ? ms(first) : '—',
        mode === 'sse' && name !== 'direct' ? signed(addedFirst) : '—',
        name === 'direct' ? '—' : `${mb(input.idle[name])} / ${mb(l?.rssPeakMB)}`,
        name === 'direct' ? '—' : int(l?.gatewayCpuPerRequestUs),
        name === 'direct' ? '1.00x' : ratio(l?.rps, dl?.rps),
        versusPortkey || '—',
        versusFloor || '—',
        String(bad),
      ]);
    }
  }
  const mainTable = table(
    [
      'scenario',
      `rps (c=${options.connections})`,
      'p50 / p99 ms',
      'c=1 p50 / p99 ms',
      'added c=1 p50 / p99 ms',
      'first event p50 ms',
      'added first event ms',
      'RSS idle / load MB',
      'CPU µs/req',
      'rps vs direct',
      'us vs Portkey',
      'us vs floor',
      'bad responses',
    ],
    rows,
  );

  // Failover and memory.
  const baselineP50 = failover.baseline?.p50;
  const baselineP99 = failover.baseline?.p99;
  const usJsonOverhead = get(sequential, 'us', 'json')?.overhead;
  const usSseOverhead = get(sequential, 'us', 'sse')?.overhead;
  const second: string[][] = [
    [
      'failover: refused provider tried, then Bench (JSON, c=1)',
      `${signed((failover.tried?.p50 ?? NaN) - (baselineP50 ?? NaN))} p50 / ${signed((failover.tried?.p99 ?? NaN) - (baselineP99 ?? NaN))} p99 ms (n=${failover.triedCount}; ${ms(failover.tried?.p50)} vs ${ms(baselineP50)} ms)`,
    ],
    [
      'failover: refused provider skipped, breaker open',
      failover.skippedCount > 0
        ? `${signed((failover.skipped?.p50 ?? NaN) - (baselineP50 ?? NaN))} p50 / ${signed((failover.skipped?.p99 ?? NaN) - (baselineP99 ?? NaN))} p99 ms (n=${failover.skippedCount})`
        : 'no request skipped the refused provider (no breaker opened)',
    ],
  ];
  if (failover.portkeyFallback !== undefined) {
    second.push([
      'Portkey fallback config, target 0 refused (no breaker)',
      `${signed(failover.portkeyFallback.p50 - (failover.portkeyHealthy?.p50 ?? NaN))} p50 / ${signed(failover.portkeyFallback.p99 - (failover.portkeyHealthy?.p99 ?? NaN))} p99 ms (${ms(failover.portkeyFallback.p50)} vs ${ms(failover.portkeyHealthy?.p50)} ms)`,
    ]);
  }
  const loadPeak = (name: TargetName): number | undefined => {
    const values = modes.map((mode) => get(load, name, mode)?.rssPeakMB).filter((v): v is number => v !== undefined);
    return values.length > 0 ? Math.max(...values) : undefined;
  };
  second.push([
    'Interference RSS: idle (fresh) / peak under load / idle after the run / VmHWM',
    `${mb(input.idle.us)} / ${mb(loadPeak('us'))} / ${mb(input.after.us)} / ${mb(input.peak.us)} MB`,
  ]);
  if (input.active.includes('portkey')) {
    second.push([
      'Portkey RSS: idle (fresh) / peak under load / idle after the run / VmHWM',
      `${mb(input.idle.portkey)} / ${mb(loadPeak('portkey'))} / ${mb(input.after.portkey)} / ${mb(input.peak.portkey)} MB`,
    ]);
  }
  for (const name of ['proxy-raw', 'proxy-parse'] as const) {
    if (!input.active.includes(name)) continue;
    second.push([
      `${label[name]} RSS: idle (fresh) / peak under load / idle after the run / VmHWM`,
      `${mb(input.idle[name])} / ${mb(loadPeak(name))} / ${mb(input.after[name])} / ${mb(input.peak[name])} MB`,
    ]);
  }
  second.push(['upstream fake RSS: idle / VmHWM', `${mb(input.idle.upstream)} / ${mb(input.peak.upstream)} MB`]);
  const cpuLine = (name: TargetName): string => {
    const j = get(load, name, 'json');
    const s = get(load, name, 'sse');
    return `${pct(j?.gatewayCpu)} / ${pct(s?.gatewayCpu)} of a core (${int(j?.gatewayCpuPerRequestUs)} / ${int(s?.gatewayCpuPerRequestUs)} µs per request)`;
  };
  for (const name of ['proxy-raw', 'proxy-parse', 'us', 'portkey'] as const) {
    if (input.active.includes(name)) second.push([`CPU at c=${options.connections}, JSON / SSE: ${label[name]}`, cpuLine(name)]);
  }
  const directJson = get(load, 'direct', 'json');
  const directSse = get(load, 'direct', 'sse');
  second.push([
    `CPU at c=${options.connections}, direct JSON: upstream / autocannon`,
    `${pct(directJson?.upstreamCpu)} / ${pct(directJson?.loadgenCpu)} of a core`,
  ]);
  second.push([
    `CPU at c=${options.connections}, direct JSON / SSE: upstream fake per request`,
    `${int(directJson?.upstreamCpuPerRequestUs)} / ${int(directSse?.upstreamCpuPerRequestUs)} µs per request`,
  ]);
  const foreign = [...load.values()].map((l) => l.foreignCpu).filter((v): v is number => v !== undefined);
  const worstForeign = Math.max(input.busyBefore ?? 0, input.sequentialForeign ?? 0, ...foreign);
  const disturbed = worstForeign > DISTURBED;
  second.push([
    'CPU of processes the bench did not start: before the run / during c=1 / during load runs (max)',
    `${pct(input.busyBefore)} / ${pct(input.sequentialForeign)} / ${foreign.length > 0 ? pct(Math.max(...foreign)) : '—'} of a core${disturbed ? ' (DISTURBED RUN)' : ''}`,
  ]);
  second.push([
    'x-interference-overhead-ms (c=1, JSON / SSE)',
    usJsonOverhead || usSseOverhead
      ? `p50 ${ms(usJsonOverhead?.p50)} / ${ms(usSseOverhead?.p50)}, p99 ${ms(usJsonOverhead?.p99)} / ${ms(usSseOverhead?.p99)} ms`
      : 'header not sent',
  ]);
  const events = (name: TargetName): string => {
    const s = get(sequential, name, 'sse')?.events;
    const c = get(checks, name, 'sse')?.events;
    if (s === undefined) return '—';
    const range = (e: { min: number; max: number } | undefined): string => (e === undefined ? '—' : e.min === e.max ? String(e.min) : `${e.min}–${e.max}`);
    return `${range(s)} (c=1), ${range(c)} (c=${options.connections})`;
  };
  second.push([`SSE events per stream (upstream sends ${STREAM_EVENTS} + [DONE])`, input.active.map((name) => `${label[name]} ${events(name)}`).join('; ')]);
  const checkLine = input.active
    .map((name) =>
      modes
        .map((mode) => {
          const c = get(checks, name, mode);
          return c === undefined ? '' : `${label[name]} ${mode.toUpperCase()} ${c.ok}/${c.requests}`;
        })
        .join(', '),
    )
    .join('; ');
  second.push([`verified bodies at c=${options.connections}`, checkLine]);
  const secondTable = table(['failover and memory', 'measured'], second);

  // Targets from issue 4.
  const usJson = get(load, 'us', 'json');
  const usSse = get(load, 'us', 'sse');
  const pkJson = get(load, 'portkey', 'json');
  const pkSse = get(load, 'portkey', 'sse');
  const needJson = Math.max(12_000, 12 * (pkJson?.rps ?? 0));
  const needSse = Math.max(9_000, 12 * (pkSse?.rps ?? 0));
  const sj = get(sequential, 'us', 'json');
  const dj = get(sequential, 'direct', 'json');
  const ss = get(sequential, 'us', 'sse');
  const ds = get(sequential, 'direct', 'sse');
  const addedJsonP50 = (sj?.total?.p50 ?? NaN) - (dj?.total?.p50 ?? NaN);
  const addedJsonP99 = (sj?.total?.p99 ?? NaN) - (dj?.total?.p99 ?? NaN);
  const addedFirst = (ss?.firstEvent?.p50 ?? NaN) - (ds?.firstEvent?.p50 ?? NaN);
  const failoverCost = (failover.tried?.p50 ?? NaN) - (baselineP50 ?? NaN);
  const judge = (ok: boolean, value: number): boolean | null => (Number.isFinite(value) ? ok : null);
  const targets: TargetCheck[] = [
    {
      target: `JSON rps, c=${options.connections}`,
      goal: `≥ ${int(needJson)}`,
      measured: int(usJson?.rps),
      pass: judge((usJson?.rps ?? 0) >= needJson, usJson?.rps ?? NaN),
    },
    {
      target: `SSE rps, c=${options.connections}`,
      goal: `≥ ${int(needSse)}`,
      measured: int(usSse?.rps),
      pass: judge((usSse?.rps ?? 0) >= needSse, usSse?.rps ?? NaN),
    },
    { target: 'added JSON latency c=1, p50', goal: '≤ +0.150 ms', measured: signed(addedJsonP50), pass: judge(addedJsonP50 <= 0.15, addedJsonP50) },
    { target: 'added JSON latency c=1, p99', goal: '≤ +0.500 ms', measured: signed(addedJsonP99), pass: judge(addedJsonP99 <= 0.5, addedJsonP99) },
    { target: 'added time to first SSE event c=1, p50', goal: '≤ +0.300 ms', measured: signed(addedFirst), pass: judge(addedFirst <= 0.3, addedFirst) },
    {
      target: 'idle RSS (fresh, embedded model not loaded)',
      goal: '≤ 60 MB',
      measured: `${mb(input.idle.us)} MB`,
      pass: judge((input.idle.us ?? Infinity) <= 60, input.idle.us ?? NaN),
    },
    {
      target: `RSS serving c=${options.connections} (peak sampled)`,
      goal: '≤ 150 MB',
      measured: `${mb(loadPeak('us'))} MB`,
      pass: judge((loadPeak('us') ?? Infinity) <= 150, loadPeak('us') ?? NaN),
    },
    {
      target: 'failover: refused provider, cost before the next (p50)',
      goal: '≤ +1 ms',
      measured: signed(failoverCost),
      pass: judge(failoverCost <= 1, failoverCost),
    },
  ];
  const badUs = modes.reduce(
    (sum, mode) =>
      sum +
      (get(load, 'us', mode)?.non2xx ?? 0) +
      (get(load, 'us', mode)?.errors ?? 0) +
      (get(checks, 'us', mode)?.failed ?? 0) +
      (get(sequential, 'us', mode)?.failed ?? 0),
    0,
  );
  targets.push({ target: 'non-2xx, errors, incomplete streams through us', goal: '0', measured: String(badUs), pass: badUs === 0 });
  const targetTable = table(
    ['target (issue 4)', 'goal', 'measured', ''],
    targets.map((t) => [t.target, t.goal, t.measured, t.pass === null ? 'n/a' : t.pass ? 'met' : 'MISSED']),
  );

  const versions = {
    interference: version('.'),
    portkey: version('node_modules/@portkey-ai/gateway'),
    hono: version('node_modules/hono'),
    honoNodeServer: version('node_modules/@hono/node-server'),
    autocannon: version('node_modules/autocannon'),
    undici: version('node_modules/undici'),
  };
  const header = [
    `## Interference benchmark, ${input.date.slice(0, 16).replace('T', ' ')} UTC`,
    '',
    `Machine: ${input.host.cpu}, ${input.host.cores} cores, ${input.host.memoryGB} GB, ${input.host.kernel}, Node ${input.host.node}. ` +
      `Interference ${versions.interference} (${input.gateway}; request log ${switchedOff(process.env.INTERFERENCE_LOG) ? 'off' : 'on'}, metrics ${switchedOff(process.env.INTERFERENCE_METRICS) ? 'off' : 'on'}), Portkey gateway ${versions.portkey} (hono ${versions.hono}, @hono/node-server ${versions.honoNodeServer}), autocannon ${versions.autocannon}. ` +
      `Load generator, gateways and fake upstream share the machine, all on 127.0.0.1 (c=1 client: Node ${input.host.runnerNode}).` +
      (options.pin
        ? ' **Pinned** (`--pin`, taskset): the measured targets (Interference, the minimal proxies, Portkey) on core 1; the load generator, the c=1 client, the fake upstream and Redis on core 0.'
        : ''),
    '',
    `Load: autocannon, ${options.connections} connections, ${options.duration} s per run after ${options.warmup} s warm-ups (latency in whole ms). ` +
      `c=1: ${options.samples} sequential keep-alive requests per row (Portkey SSE: ${options.portkeyStreamSamples}), µs timer, ${options.rounds} interleaved rounds; added = row − direct at the same percentile. ` +
      `First event = first complete SSE event at the client. RSS = VmRSS of the gateway process. "bad responses" = non-2xx + errors under load + failed body checks. ` +
      `"minimal proxy" rows: a few dozen lines of node:http + undici (bench/proxy-raw.ts moves bytes: the floor; bench/proxy-parse.ts parses and re-serialises every body); "us vs floor" = Interference against the raw one.` +
      (options.measureRounds > 1 ? ` c=1 and c=${options.connections} figures are medians of ${options.measureRounds} rounds.` : '') +
      (options.quick ? ' QUICK MODE: short runs, few samples; smoke test only.' : ''),
    ...(disturbed ? ['', `**Disturbed run:** other processes used up to ${pct(worstForeign)} of a core while this ran; do not quote these figures.`] : []),
  ].join('\n');
  const floor = floorTable(input);
  const markdown = [
    header,
    '',
    mainTable,
    '',
    ...(floor ? [floor.markdown, ''] : []),
    secondTable,
    '',
    targetTable,
    '',
    ...(input.redis ? [redisTable(input.redis, options), ''] : []),
  ];
  if (input.profile) {
    markdown.push(
      `Profile of Interference (--cpu-prof, c=${options.connections} JSON, ${options.duration} s, ${input.profile.totalMs.toFixed(0)} ms sampled), self time:`,
      '',
      table(
        ['category', 'self %'],
        Object.entries(input.profile.categories)
          .sort((a, b) => b[1] - a[1])
          .map(([name, value]) => [name, value.toFixed(1)]),
      ),
      '',
      table(
        ['function', 'where', 'self %'],
        input.profile.top.slice(0, 15).map((entry) => [entry.fn, entry.where, entry.selfPct.toFixed(1)]),
      ),
      '',
    );
  }

  const json: Record<string, unknown> = {
    date: input.date,
    machine: input.host,
    versions,
    gateway: input.gateway,
    busyBefore: input.busyBefore,
    sequentialForeign: input.sequentialForeign,
    disturbed,
    options,
    load: Object.fromEntries(load),
    sequential: Object.fromEntries(sequential),
    concurrentChecks: Object.fromEntries(checks),
    failover,
    memory: {
      idle: input.idle,
      afterRun: input.after,
      vmHWM: input.peak,
      peakUnderLoad: { us: loadPeak('us'), portkey: loadPeak('portkey'), 'proxy-raw': loadPeak('proxy-raw'), 'proxy-parse': loadPeak('proxy-parse') },
    },
    targets,
    cpuPerRequestUs: Object.fromEntries(
      [...load].map(([name, l]) => [name, name.startsWith('direct') ? l.upstreamCpuPerRequestUs : l.gatewayCpuPerRequestUs] as const),
    ),
    markdown: markdown.join('\n'),
  };
  if (input.profile) json.profile = input.profile;
  if (floor) json.floor = floor.json;
  if (input.redis) json.redis = input.redis;
  return { markdown: markdown.join('\n'), json };
}

await main().catch(async (error: unknown) => {
  log(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  await stopAll();
  process.exitCode = 1;
});
