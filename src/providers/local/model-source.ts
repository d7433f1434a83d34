/**
 * Where the embedded model comes from: a GGUF path used as is, or an `hf:` URI / https URL that
 * node-llama-cpp downloads once into the cache directory (later resolves make no network call).
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { llamaCpp } from './llama-module.js';

export type ModelSourceKind = 'path' | 'hf' | 'url';

const HF_PREFIXES = ['hf://', 'huggingface://', 'hf:', 'huggingface:', 'hf.co/', 'huggingface.co/'];

export function classifyModelSource(spec: string): ModelSourceKind {
  if (HF_PREFIXES.some((prefix) => spec.startsWith(prefix))) return 'hf';
  if (/^https?:\/\//i.test(spec)) return 'url';
  return 'path';
}

function stripGguf(name: string): string {
  return name.replace(/\.gguf$/i, '').replace(/-\d{5}-of-\d{5}$/, '');
}

/**
 * A readable model id: the file name without `.gguf` for paths, URLs and `hf:` file URIs;
 * `<repo>[:<quant>]` for `hf:<user>/<repo>[:<quant>]`.
 */
export function modelIdFromSource(spec: string): string {
  const kind = classifyModelSource(spec);
  if (kind === 'path') return stripGguf(path.basename(spec)) || 'local';
  if (kind === 'url') {
    const url = new URL(spec);
    const last = url.pathname
      .split('/')
      .filter((part) => part !== '')
      .at(-1);
    return last === undefined ? url.hostname : stripGguf(decodeURIComponent(last));
  }
  const prefix = HF_PREFIXES.find((p) => spec.startsWith(p)) ?? '';
  const parts = spec
    .slice(prefix.length)
    .split('#')[0]!
    .split('/')
    .filter((part) => part !== '');
  if (parts.length > 2) return stripGguf(parts.at(-1)!);
  return parts[1] ?? parts[0] ?? 'local';
}

/** The local path a `path` source points at (absolute), for existence checks and messages. */
export function localPathOf(spec: string): string {
  return path.resolve(spec);
}

export function missingModelMessage(file: string): string {
  return `model file not found: ${file}; set INTERFERENCE_LOCAL_MODEL to a GGUF file or hf: URI`;
}

export interface ProgressStatus {
  totalSize: number;
  downloadedSize: number;
}

/** Progress lines on `stream`: one line redrawn with \r on a TTY, otherwise a line per 10%. */
export function createProgressPrinter(label: string, stream: NodeJS.WritableStream & { isTTY?: boolean } = process.stderr): (status: ProgressStatus) => void {
  let lastDecile = -1;
  let finished = false;
  const mb = (bytes: number): string => (bytes / 1_048_576).toFixed(1);
  return ({ totalSize, downloadedSize }) => {
    if (finished) return;
    const ratio = totalSize > 0 ? Math.min(1, downloadedSize / totalSize) : 0;
    const percent = Math.floor(ratio * 100);
    const text = `${label} ${String(percent).padStart(3)}% ${mb(downloadedSize)}/${mb(totalSize)} MB`;
    const done = totalSize > 0 && downloadedSize >= totalSize;
    if (stream.isTTY === true) {
      const width = 20;
      const filled = Math.round(ratio * width);
      stream.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${text}${done ? '\n' : ''}`);
    } else {
      const decile = Math.floor(percent / 10);
      if (decile > lastDecile) {
        lastDecile = decile;
        stream.write(`${text}\n`);
      }
    }
    if (done) finished = true;
  };
}

export interface ResolveSourceOptions {
  cacheDir: string;
  hfEndpoint?: string | undefined;
  signal?: AbortSignal | undefined;
  log?: ((message: string) => void) | undefined;
  /** Where the progress bar goes (default stderr). */
  progressStream?: (NodeJS.WritableStream & { isTTY?: boolean }) | undefined;
}

/** The file name a plain URL is cached under, so a later resolve finds it without the network. */
function urlFileName(spec: string): string | undefined {
  const last = new URL(spec).pathname.split('/').at(-1);
  return last !== undefined && /\.gguf$/i.test(last) ? decodeURIComponent(last) : undefined;
}

/** A local GGUF file for `spec`, downloading it first when it is an `hf:` URI or URL not yet cached. */
export async function resolveModelSource(spec: string, options: ResolveSourceOptions): Promise<string> {
  const kind = classifyModelSource(spec);
  if (kind === 'path') {
    const file = localPathOf(spec);
    if (!existsSync(file)) throw new Error(missingModelMessage(file));
    return file;
  }
  let announced = false;
  const printer = createProgressPrinter(`downloading ${modelIdFromSource(spec)}`, options.progressStream);
  const fileName = kind === 'url' ? urlFileName(spec) : undefined;
  const { resolveModelFile } = await llamaCpp();
  return resolveModelFile(spec, {
    directory: options.cacheDir,
    download: 'auto',
    cli: false,
    ...(fileName === undefined ? {} : { fileName }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.hfEndpoint === undefined ? {} : { endpoints: { huggingFace: options.hfEndpoint } }),
    onProgress: (status) => {
      if (!announced) {
        announced = true;
        options.log?.(`downloading ${spec} into ${options.cacheDir}`);
      }
      printer(status);
    },
  });
}
