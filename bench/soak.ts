/**
 * Soak: 50 concurrent clients against the gateway (its own process, built from dist/) in front of
 * the fast fake upstream, for a bounded time; half the requests stream. Reports errors (must be 0),
 * the gateway's RSS over time and its drift (least-squares slope over the second half, after
 * warm-up), and the heap after a final idle pause. Loopback only; stops what it started.
 *
 * With `evil`, one request in ten goes first to the evil upstream (bench/evil-upstream.ts: endless
 * streams, endless lines, 100 MB JSON, trickles, `choices: [null]`, 500s, redirects, gzip), with
 * the healthy upstream behind it: no request may be lost, and RSS must stay flat.
 *
 *   npm run build && npx tsx bench/soak.ts [minutes=3] [clients=50] [evil]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { Agent, request } from 'undici';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const minutes = Number(process.argv[2] ?? 3);
const clients = Number(process.argv[3] ?? 50);
const evil = process.argv[4] === 'evil';
const children: ChildProcess[] = [];

function rssMB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /VmRSS:\s+(\d+) kB/.exec(status);
  return match ? Number(match[1]) / 1024 : Number.NaN;
}

async function startChild(
  args: string[],
  env: Record<string, string>,
  ready: RegExp,
  stream: 'stdout' | 'stderr',
): Promise<{ child: ChildProcess; match: RegExpExecArray }> {
  const child = spawn(process.execPath, args, { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let text = '';
  const match = await new Promise<RegExpExecArray>((resolve, reject) => {
    child[stream]?.on('data', (data: Buffer) => {
      text += data.toString();
      const found = ready.exec(text);
      if (found) resolve(found);
    });
    child.once('exit', (code) => reject(new Error(`${args.join(' ')} exited (${code}): ${text}`)));
  });
  return { child, match };
}

async function stopAll(): Promise<void> {
  await Promise.all(
    children.map(async (child) => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await Promise.race([once(child, 'exit'), sleep(3000).then(() => child.kill('SIGKILL'))]);
    }),
  );
}

function slopePerMinute(points: ReadonlyArray<[number, number]>): number {
  const n = points.length;
  if (n < 2) return 0;
  const mx = points.reduce((s, [x]) => s + x, 0) / n;
  const my = points.reduce((s, [, y]) => s + y, 0) / n;
  const sxy = points.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0);
  const sxx = points.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  return sxx === 0 ? 0 : (sxy / sxx) * 60_000;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(path.join(tmpdir(), 'interference-soak-'));
  process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));
  try {
    const upstream = await startChild(['--import', 'tsx', 'bench/upstream.ts'], {}, /^(\d+)\n/m, 'stdout');
    const upstreamPort = upstream.match[1] as string;
    const config = path.join(dir, 'config.json');
    const providers: unknown[] = [{ id: 'Bench', api: 'openai', baseUrl: `http://127.0.0.1:${upstreamPort}/v1`, models: ['gpt-4o-mini'] }];
    const evilEnv: Record<string, string> = {};
    if (evil) {
      const hostile = await startChild(['--import', 'tsx', 'bench/evil-upstream.ts'], {}, /^(\d+)\n/m, 'stdout');
      providers.push({ id: 'Evil', api: 'openai', baseUrl: `http://127.0.0.1:${hostile.match[1] as string}/v1`, models: ['gpt-4o-mini'] });
      // Small caps and deadlines so each hostile answer ends fast; the breaker off, so that every
      // tenth request really meets the evil upstream for the whole run.
      Object.assign(evilEnv, {
        INTERFERENCE_MAX_UPSTREAM_BYTES: String(1 << 20),
        INTERFERENCE_MAX_EVENT_BYTES: String(1 << 20),
        INTERFERENCE_FIRST_CONTENT_TIMEOUT_MS: '1000',
        INTERFERENCE_BREAKER_FAILURES: '1000',
        INTERFERENCE_RETRIES: '0',
      });
    }
    writeFileSync(config, JSON.stringify({ providers }));
    const gateway = await startChild(
      ['dist/src/main.js'],
      { PORT: '0', HOST: '127.0.0.1', INTERFERENCE_LOG: '0', INTERFERENCE_CONFIG: config, HOME: dir, ...evilEnv },
      /listening on (http:\/\/[\d.:]+)/,
      'stderr',
    );
    const url = `${gateway.match[1] as string}/v1/chat/completions`;
    const pid = gateway.child.pid as number;
    const idleBefore = rssMB(pid);
    const agent = new Agent({ connections: clients, keepAliveTimeout: 30_000 });
    const body = (stream: boolean, provider: string) =>
      JSON.stringify({ model: 'gpt-4o-mini', provider, stream, messages: [{ role: 'user', content: 'Say hello' }] });
    const bodies = [body(false, 'Bench'), body(true, 'Bench')];
    const evilBodies = [body(false, 'Evil Bench'), body(true, 'Evil Bench')];
    const counts = { ok: 0, non2xx: 0, errors: 0, incompleteStreams: 0, viaEvil: 0 };
    const deadline = Date.now() + minutes * 60_000;
    const samples: Array<[number, number]> = [];
    const started = Date.now();
    const sampler = setInterval(() => samples.push([Date.now() - started, rssMB(pid)]), 5000);

    await Promise.all(
      Array.from({ length: clients }, async (_, client) => {
        for (let i = 0; Date.now() < deadline; i++) {
          const stream = (client + i) % 2 === 1;
          const hostile = evil && (client + i) % 10 === 0;
          if (hostile) counts.viaEvil++;
          try {
            const payload = (hostile ? evilBodies : bodies)[stream ? 1 : 0];
            const response = await request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: payload, dispatcher: agent });
            const text = await response.body.text();
            if (response.statusCode !== 200) counts.non2xx++;
            else if (stream && !text.endsWith('data: [DONE]\n\n')) counts.incompleteStreams++;
            else counts.ok++;
          } catch {
            counts.errors++;
          }
        }
      }),
    );
    clearInterval(sampler);
    await agent.close();
    await sleep(5000);
    const idleAfter = rssMB(pid);
    const seconds = (Date.now() - started) / 1000;
    const half = samples.filter(([t]) => t >= (minutes * 60_000) / 2);
    const rss = samples.map(([, value]) => value);
    console.log(
      `Soak: ${clients} clients for ${minutes} min against ${url}${evil ? `, ${counts.viaEvil} requests (1 in 10) first to the evil upstream` : ''} (node ${process.version}, ${new Date().toISOString()})`,
    );
    console.log('| requests | rps | errors | non-2xx | incomplete streams | RSS idle before | RSS min / max under load | drift (2nd half) | RSS idle after |');
    console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
    const total = counts.ok + counts.non2xx + counts.errors + counts.incompleteStreams;
    console.log(
      `| ${total} | ${(total / seconds).toFixed(0)} | ${counts.errors} | ${counts.non2xx} | ${counts.incompleteStreams} | ${idleBefore.toFixed(1)} MB | ${Math.min(...rss).toFixed(1)} / ${Math.max(...rss).toFixed(1)} MB | ${slopePerMinute(half).toFixed(2)} MB/min | ${idleAfter.toFixed(1)} MB |`,
    );
    writeFileSync(
      path.join(repoRoot, evil ? 'bench/results/soak-evil.json' : 'bench/results/soak.json'),
      `${JSON.stringify({ date: new Date().toISOString(), minutes, clients, evil, seconds, counts, idleBefore, idleAfter, samples }, null, 1)}\n`,
    );
    if (counts.errors + counts.non2xx + counts.incompleteStreams > 0) process.exitCode = 1;
  } finally {
    await stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
