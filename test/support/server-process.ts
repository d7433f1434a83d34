/**
 * The gateway as a child process (`node --import tsx src/main.ts`), for tests that need to see
 * its memory: its RSS is read from /proc/<pid>/status, and `watch()` runs an attack while sampling
 * that RSS and timing GET /health, so a test can assert that the server stayed bounded and
 * responsive under it. The environment is clean (only PATH and HOME are inherited), the config
 * file, images and models live in a temporary directory that stop() removes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { baseTestEnv, repoRoot } from './gateway.js';
import { gatewayClient, type GatewayClient } from './http.js';

export interface GatewayProcessOptions {
  /** Gateway environment on top of the test defaults (PORT=0, HOST, INTERFERENCE_LOG=0, the tiny local model…). */
  env?: Record<string, string>;
  /** Written to a temporary config file named by INTERFERENCE_CONFIG (default: no providers). */
  config?: unknown;
}

/** What an attack did to the server while it ran. */
export interface Watched<T> {
  value: T;
  /** Highest VmRSS seen, MB (sampled every 100 ms). */
  maxRssMb: number;
  /** Slowest GET /health answer, ms (one at a time, every 100 ms). */
  maxHealthMs: number;
  healthChecks: number;
  /** The attack's own duration, ms. */
  ms: number;
}

export interface WatchOptions {
  /**
   * Past this RSS (MB) the attack is aborted (its signal fires) and `onRunaway` runs: a gateway
   * without bounds must fail its test, not take the shared machine down. Default 1024.
   */
  runawayMb?: number;
  onRunaway?: () => void;
}

export interface GatewayProcess extends GatewayClient {
  /** http://127.0.0.1:PORT */
  url: string;
  port: number;
  pid: number;
  /** VmRSS in bytes, or undefined once the process is gone. */
  rssBytes(): number | undefined;
  /** What the child wrote on stderr so far (the last 64 KiB). */
  stderr(): string;
  watch<T>(attack: (signal: AbortSignal) => Promise<T>, options?: WatchOptions): Promise<Watched<T>>;
  /** SIGTERM, SIGKILL after 5 s; then removes the temporary directory. */
  stop(): Promise<void>;
}

const STDERR_KEEP = 64 * 1024;
const LISTENING = /listening on (http:\/\/[^\s/]+)\/v1/;

export async function startGatewayProcess(options: GatewayProcessOptions = {}): Promise<GatewayProcess> {
  const dir = mkdtempSync(path.join(tmpdir(), 'interference-proc-'));
  const configPath = path.join(dir, 'interference.config.json');
  // Always a config file of our own: a stray interference.config.json in the repo never applies.
  writeFileSync(configPath, JSON.stringify(options.config ?? { providers: [] }));
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    ...baseTestEnv(dir),
    INTERFERENCE_SHUTDOWN_MS: '500',
    INTERFERENCE_CONFIG: configPath,
    ...options.env,
  };
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { cwd: repoRoot, env, stdio: ['ignore', 'ignore', 'pipe'] });
  const killOnExit = (): void => {
    child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (text: string) => {
    stderr = (stderr + text).slice(-STDERR_KEEP);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));

  let url: string;
  try {
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`the gateway did not start within 30 s; stderr:\n${stderr}`)), 30_000);
      const onData = (): void => {
        const match = LISTENING.exec(stderr);
        if (match === null) return;
        clearTimeout(timer);
        child.stderr?.off('data', onData);
        resolve(match[1] as string);
      };
      child.stderr?.on('data', onData);
      void exited.then(() => {
        clearTimeout(timer);
        reject(new Error(`the gateway exited with code ${child.exitCode} before listening; stderr:\n${stderr}`));
      });
    });
  } catch (error) {
    await stopChild(child, exited);
    process.off('exit', killOnExit);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const port = Number(new URL(url).port);
  const pid = child.pid as number;
  // /health goes over its own connection: it must not queue behind the attack's.
  const healthAgent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  const rssBytes = (): number | undefined => {
    try {
      const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return match === null ? undefined : Number(match[1]) * 1024;
    } catch {
      return undefined;
    }
  };

  /** One GET /health; its latency in ms (the timeout, 5 s, when it never answers). */
  const timeHealth = (): Promise<number> =>
    new Promise<number>((resolve) => {
      const started = performance.now();
      const req = http.get(`${url}/health`, { agent: healthAgent, timeout: 5000 }, (res) => {
        res.resume();
        res.once('end', () => resolve(performance.now() - started));
        res.once('error', () => resolve(5000));
      });
      req.once('timeout', () => req.destroy());
      req.once('error', () => resolve(Math.max(5000, performance.now() - started)));
    });

  return {
    url,
    port,
    pid,
    rssBytes,
    stderr: () => stderr,
    ...gatewayClient(url),

    async watch<T>(attack: (signal: AbortSignal) => Promise<T>, watchOptions: WatchOptions = {}): Promise<Watched<T>> {
      const runawayBytes = (watchOptions.runawayMb ?? 1024) * 1024 * 1024;
      const controller = new AbortController();
      let maxRss = rssBytes() ?? 0;
      let maxHealth = 0;
      let checks = 0;
      let running = true;
      const sampler = setInterval(() => {
        const rss = rssBytes();
        if (rss === undefined) return;
        if (rss > maxRss) maxRss = rss;
        if (rss > runawayBytes && !controller.signal.aborted) {
          controller.abort(new Error(`runaway: gateway RSS ${Math.round(rss / 1048576)} MB`));
          watchOptions.onRunaway?.();
        }
      }, 100);
      const poller = (async () => {
        while (running) {
          const started = performance.now();
          const ms = await timeHealth();
          checks += 1;
          if (ms > maxHealth) maxHealth = ms;
          const wait = 100 - (performance.now() - started);
          if (running && wait > 0) await sleep(wait);
        }
      })();
      const started = performance.now();
      const finish = async (): Promise<void> => {
        running = false;
        clearInterval(sampler);
        await poller;
        const last = rssBytes();
        if (last !== undefined && last > maxRss) maxRss = last;
      };
      let value: T;
      try {
        value = await attack(controller.signal);
      } catch (error) {
        await finish();
        throw error;
      }
      const ms = performance.now() - started;
      // At least one health check during the attack, however short it was.
      while (checks === 0) await sleep(10);
      await finish();
      return { value, maxRssMb: Math.round(maxRss / 10485.76) / 100, maxHealthMs: Math.round(maxHealth), healthChecks: checks, ms: Math.round(ms) };
    },

    async stop() {
      healthAgent.destroy();
      await stopChild(child, exited);
      process.off('exit', killOnExit);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function stopChild(child: ChildProcess, exited: Promise<void>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
  await exited;
  clearTimeout(timer);
}
