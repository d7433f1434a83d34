/**
 * Tokens/s of the embedded model run by node-llama-cpp directly, with the Local provider's
 * settings (threads 1, greedy, contextSize 512, a fresh sequence per run). The baseline to compare
 * with the same model through the HTTP server.
 *
 *   npx tsx bench/local-direct.ts [model.gguf] [tokens=200] [runs=5]
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getLlama, LlamaCompletion, LlamaLogLevel } from 'node-llama-cpp';

export interface DirectMeasurement {
  /** Generated tokens / generation wall time, over all measured runs. */
  tokensPerSecond: number;
  /** Generated tokens per run (a story can end before `tokens`). */
  completionTokens: number[];
  promptTokens: number;
  /** Median time from the call to the first text piece. */
  firstTokenMs: number;
  /** getLlama + loadModel + createContext. */
  loadMs: number;
  runs: number;
}

export const PROMPT = 'Once upon a time';
export const CONTEXT_SIZE = 512;

export async function measureDirect(modelPath: string, tokens: number, runs: number): Promise<DirectMeasurement> {
  const loadStart = performance.now();
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: LlamaLogLevel.error, maxThreads: 1 });
  try {
    const model = await llama.loadModel({ modelPath });
    const context = await model.createContext({ contextSize: CONTEXT_SIZE, threads: 1 });
    const loadMs = performance.now() - loadStart;
    const completionTokens: number[] = [];
    const firstTokenTimes: number[] = [];
    let promptTokens = 0;
    let totalMs = 0;
    // One unmeasured warm-up run, then `runs` measured ones.
    for (let run = 0; run <= runs; run++) {
      const sequence = context.getSequence();
      const completion = new LlamaCompletion({ contextSequence: sequence });
      const before = sequence.tokenMeter.getState();
      const start = performance.now();
      let firstToken: number | undefined;
      await completion.generateCompletionWithMeta(PROMPT, {
        maxTokens: Math.min(tokens, CONTEXT_SIZE - 8),
        temperature: 0,
        disableContextShift: true,
        onTextChunk: () => (firstToken ??= performance.now()),
      });
      const elapsed = performance.now() - start;
      const used = sequence.tokenMeter.diff(before);
      completion.dispose();
      await sequence.dispose();
      if (run === 0) continue;
      totalMs += elapsed;
      promptTokens = used.usedInputTokens;
      completionTokens.push(used.usedOutputTokens);
      firstTokenTimes.push((firstToken ?? performance.now()) - start);
    }
    await context.dispose();
    await model.dispose();
    const generated = completionTokens.reduce((sum, n) => sum + n, 0);
    firstTokenTimes.sort((a, b) => a - b);
    return {
      tokensPerSecond: totalMs > 0 ? (generated * 1000) / totalMs : 0,
      completionTokens,
      promptTokens,
      firstTokenMs: firstTokenTimes[Math.floor(firstTokenTimes.length / 2)] ?? 0,
      loadMs,
      runs,
    };
  } finally {
    await llama.dispose();
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  const modelPath = process.argv[2] ?? path.resolve(repoRoot, '../shared/models/stories260K.gguf');
  const tokens = Number(process.argv[3] ?? 200);
  const runs = Number(process.argv[4] ?? 5);
  const result = await measureDirect(modelPath, tokens, runs);
  console.log(`node-llama-cpp direct, ${path.basename(modelPath)}, threads 1, greedy, context ${CONTEXT_SIZE}`);
  console.log(`  ${result.tokensPerSecond.toFixed(0)} tokens/s over ${runs} runs (completion tokens ${result.completionTokens.join(', ')})`);
  console.log(`  prompt ${result.promptTokens} tokens, first token ${result.firstTokenMs.toFixed(1)} ms (median), load ${result.loadMs.toFixed(0)} ms`);
}
