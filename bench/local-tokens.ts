/**
 * The embedded model's tokens/s through the gateway next to node-llama-cpp called directly, in
 * one run, on the same model and settings (threads 1, greedy, context 512). Rounds alternate
 * direct / through the server so that machine noise hits both.
 *
 *   npx tsx bench/local-tokens.ts [tokens=400] [runs=5] [rounds=3]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTEXT_SIZE, PROMPT, measureDirect } from './local-direct.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const modelPath = path.resolve(repoRoot, '../shared/models/stories260K.gguf');

export interface ServerMeasurement {
  tokensPerSecond: number;
  firstChunkMs: number;
}

/** Starts the gateway as its own process on a free port; resolves once it listens. */
export async function spawnGateway(env: Record<string, string>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'src/main.ts')], {
    cwd: repoRoot,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', PORT: '0', HOST: '127.0.0.1', INTERFERENCE_LOG: '0', ...env },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let text = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr?.on('data', (data: Buffer) => {
      text += data.toString();
      const match = /listening on (http:\/\/[^/\s]+)/.exec(text);
      if (match) resolve(match[1] as string);
    });
    child.once('exit', (code) => reject(new Error(`gateway exited (${code}): ${text}`)));
  });
  return { url, child };
}

export async function stopGateway(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  child.kill('SIGTERM');
  await once(child, 'exit');
}

/** Streams `runs` completions through the gateway (after one warm-up) and times them. */
async function measureServer(url: string, tokens: number, runs: number): Promise<ServerMeasurement> {
  let generated = 0;
  let totalMs = 0;
  const firsts: number[] = [];
  for (let run = 0; run <= runs; run++) {
    const start = performance.now();
    const response = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        provider: 'Local',
        messages: [{ role: 'user', content: PROMPT }],
        max_tokens: Math.min(tokens, CONTEXT_SIZE - 8),
        temperature: 0,
        stream: true,
        stream_options: { include_usage: true },
      }),
    });
    const reader = response.body?.getReader();
    if (reader === undefined) throw new Error('no body');
    let first: number | undefined;
    let text = '';
    const decoder = new TextDecoder();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      first ??= performance.now();
      text += decoder.decode(value, { stream: true });
    }
    const elapsed = performance.now() - start;
    const usage = /"completion_tokens":(\d+)/.exec(text);
    if (usage === null) throw new Error(`no usage in the stream: ${text.slice(-300)}`);
    if (run === 0) continue;
    generated += Number(usage[1]);
    totalMs += elapsed;
    firsts.push((first ?? performance.now()) - start);
  }
  firsts.sort((a, b) => a - b);
  return { tokensPerSecond: (generated * 1000) / totalMs, firstChunkMs: firsts[Math.floor(firsts.length / 2)] ?? 0 };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

export async function benchLocal(tokens: number, runs: number, rounds: number): Promise<{ direct: number; server: number; ratio: number }> {
  const { url, child } = await spawnGateway({
    INTERFERENCE_LOCAL_MODEL: modelPath,
    INTERFERENCE_LOCAL_CONTEXT: String(CONTEXT_SIZE),
    INTERFERENCE_LOCAL_THREADS: '1',
  });
  const direct: number[] = [];
  const server: number[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      direct.push((await measureDirect(modelPath, tokens, runs)).tokensPerSecond);
      server.push((await measureServer(url, tokens, runs)).tokensPerSecond);
    }
  } finally {
    await stopGateway(child);
  }
  const d = median(direct);
  const s = median(server);
  return { direct: d, server: s, ratio: s / d };
}

const invokedDirectly = process.argv[1] !== undefined && fileURLToPath(import.meta.url) === path.resolve(process.argv[1]);
if (invokedDirectly) {
  const tokens = Number(process.argv[2] ?? 400);
  const runs = Number(process.argv[3] ?? 5);
  const rounds = Number(process.argv[4] ?? 3);
  const result = await benchLocal(tokens, runs, rounds);
  console.log(`Embedded model (stories260K, threads 1, greedy, ${tokens} tokens, ${runs} runs x ${rounds} rounds, medians)`);
  console.log('| path | tokens/s |');
  console.log('| --- | ---: |');
  console.log(`| node-llama-cpp direct | ${result.direct.toFixed(0)} |`);
  console.log(`| through Interference (HTTP, SSE) | ${result.server.toFixed(0)} |`);
  console.log(`| ratio | ${(result.ratio * 100).toFixed(1)}% |`);
}
