/**
 * Starts the two reference proxies of `npm run bench` (proxy-raw.ts, proxy-parse.ts) in front of
 * the fake upstream. They are transpiled to plain JavaScript first (typescript's transpileModule:
 * types removed, nothing else) and run by bare `node`: run through tsx, the measured process would
 * also carry tsx's loader in its memory, which Interference (node dist/…) does not.
 */
import { mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { start, type Managed } from './processes.js';

export type ProxyKind = 'raw' | 'parse';

export interface ProxyContext {
  benchDir: string;
  repoRoot: string;
  /** Scratch directory of this run; the transpiled files go to <tmp>/proxies. */
  tmp: string;
  nodeBin: string;
  /** --require preloads (parent-watch.cjs). */
  preloads: string[];
  env: Record<string, string>;
}

function transpile(kind: ProxyKind, context: ProxyContext): string {
  const dir = path.join(context.tmp, 'proxies');
  mkdirSync(dir, { recursive: true });
  // `undici` must resolve from the transpiled file: a node_modules link to the project's own.
  try {
    symlinkSync(path.join(context.repoRoot, 'node_modules'), path.join(dir, 'node_modules'));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
  }
  const source = readFileSync(path.join(context.benchDir, `proxy-${kind}.ts`), 'utf8');
  const output = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } });
  const file = path.join(dir, `proxy-${kind}.mjs`);
  writeFileSync(file, output.outputText);
  return file;
}

export async function startProxy(kind: ProxyKind, upstreamOrigin: string, context: ProxyContext): Promise<{ proc: Managed; origin: string }> {
  const file = transpile(kind, context);
  const { proc, match } = await start({
    name: `proxy-${kind}`,
    command: context.nodeBin,
    args: [...context.preloads.flatMap((preload) => ['--require', preload]), file, upstreamOrigin],
    env: context.env,
    cwd: path.dirname(file),
    ready: /^(\d+)\s*$/m,
  });
  return { proc, origin: `http://127.0.0.1:${match[1] as string}` };
}
