import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { defaultLocalModel, type Config } from './config.js';
import { discardBody, send } from './core/http.js';
import type { Registry } from './core/registry.js';
import { classifyModelSource, localPathOf, modelIdFromSource } from './providers/local/model-source.js';

/**
 * The start-up banner: where prompts can go, said truthfully. Providers with keys; keyless public
 * services that would receive prompts (by name and host); local servers and whether they answered
 * a probe just now; the embedded model and where its file comes from.
 */
export async function banner(registry: Registry, config: Config, url: string, version: string): Promise<string> {
  const entries = registry.all();
  const lines = [
    `Interference ${version} listening on ${url}/v1`,
    `Chat page: ${url}/chat   API docs: ${url}/docs`,
    '',
    'Where prompts go (each response names its provider):',
  ];
  const keyed = entries.filter((entry) => entry.serverKey !== undefined && entry.provider.parent !== 'HuggingSpace');
  lines.push(
    `  providers with keys:  ${keyed.length > 0 ? keyed.map((entry) => entry.provider.id).join(', ') : 'none yet (set a key such as GROQ_API_KEY or OPENAI_API_KEY; GET /v1/providers says which)'}`,
  );
  const custom = entries.filter((entry) => entry.configuredByUser && entry.serverKey === undefined && !localServers.includes(entry.provider.id));
  if (custom.length > 0)
    lines.push(`  configured, no key:   ${custom.map((entry) => `${entry.provider.id} (${entry.provider.baseUrl ?? 'custom'})`).join(', ')}`);
  const publicOnes = entries.filter((entry) => entry.publicHosts !== undefined && entry.provider.parent !== 'HuggingSpace');
  if (publicOnes.length > 0) {
    const names = publicOnes.map((entry) => `${entry.provider.id} (${(entry.publicHosts ?? []).join(', ')})`).join(', ');
    lines.push(
      config.publicProviders
        ? `  public, no key:       ${names}: public services that receive the prompts routed to them; INTERFERENCE_PUBLIC_PROVIDERS=off keeps prompts off them`
        : `  public, no key:       off (INTERFERENCE_PUBLIC_PROVIDERS=off): ${publicOnes.map((entry) => entry.provider.id).join(', ')} refused`,
    );
  }
  const probes = await Promise.all(
    entries
      .filter((entry) => localServers.includes(entry.provider.id))
      .map(async (entry) => {
        const base = entry.provider.baseUrl ?? '';
        const answer = await probe(base);
        const routed = entry.autoRoute ? '' : ' (named in "provider" only, until its base URL is configured)';
        return `${entry.provider.id} at ${base}: ${answer}${routed}`;
      }),
  );
  if (probes.length > 0) lines.push(`  local servers:        ${probes.join('; ')}`);
  lines.push(`  embedded model:       Local, ${describeLocalModel(config)}`);
  if (config.configPath) lines.push(`Config file: ${config.configPath}`);
  for (const warning of config.warnings) lines.push(`WARNING: ${warning}`);
  return `${lines.join('\n')}\n`;
}

const localServers = ['Ollama', 'LlamaCpp'];

/** GET <base>/models within half a second: does anything answer there now? */
async function probe(base: string): Promise<string> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 500);
  try {
    const response = await send({
      method: 'GET',
      url: `${base.replace(/\/+$/, '')}/models`,
      headers: {},
      signal: controller.signal,
      timeouts: { connectMs: 500, firstByteMs: 500, idleMs: 500 },
    });
    discardBody(response.body);
    return response.statusCode < 400 ? 'answered' : `answered with HTTP ${response.statusCode}`;
  } catch (error) {
    return `not answering (${error instanceof Error ? error.message : String(error)})`;
  } finally {
    clearTimeout(timer);
  }
}

/** The default model's file size, as published (Q8_0 of SmolLM2-135M-Instruct). */
const defaultModelBytes = 145 * 1024 * 1024;

/** Where the embedded model's file is, or will come from, and how big it is. */
export function describeLocalModel(config: Config): string {
  const spec = config.local.model;
  const kind = classifyModelSource(spec);
  if (kind === 'path') {
    const file = localPathOf(spec);
    if (!existsSync(file)) return `${file}: FILE MISSING (set INTERFERENCE_LOCAL_MODEL to a GGUF file); it cannot answer`;
    return `${file} (${megabytes(statSync(file).size)})`;
  }
  const cached = cachedFile(spec, config.local.cacheDir);
  if (cached !== undefined) return `${spec}, cached at ${cached} (${megabytes(statSync(cached).size)})`;
  const from = kind === 'url' ? new URL(spec).host : (config.local.hfEndpoint ?? 'https://huggingface.co');
  const size = spec === defaultLocalModel ? `about ${megabytes(defaultModelBytes)}` : 'size known once the download starts';
  return `${spec}, not cached: downloaded on first use from ${from} (${size}) into ${config.local.cacheDir}`;
}

/** A GGUF file in the cache whose name carries the model's name (and quantisation, for `hf:` URIs). */
function cachedFile(spec: string, cacheDir: string): string | undefined {
  let names: string[];
  try {
    names = readdirSync(cacheDir).filter((name) => name.toLowerCase().endsWith('.gguf'));
  } catch {
    return undefined;
  }
  const quant = /:([\w.-]+)$/.exec(spec)?.[1]?.toLowerCase();
  const base = modelIdFromSource(quant === undefined ? spec : spec.slice(0, spec.length - quant.length - 1))
    .toLowerCase()
    .replace(/-gguf$/, '');
  const found = names.find((name) => {
    const lower = name.toLowerCase();
    return lower.includes(base) && (quant === undefined || lower.includes(quant));
  });
  return found === undefined ? undefined : path.join(cacheDir, found);
}

function megabytes(bytes: number): string {
  const mb = bytes / (1024 * 1024);
  return mb >= 10 ? `${Math.round(mb)} MB` : `${mb.toFixed(1)} MB`;
}
