import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/start.js';
import { gatewayClient, type GatewayClient } from './http.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** The tiny trained model shared beside the project (never copied into the repo). */
export const storiesModel = path.resolve(repoRoot, '../shared/models/stories260K.gguf');

export interface GatewayOptions {
  /** Environment for the gateway; the process environment is NOT inherited (no stray keys). */
  env?: Record<string, string>;
  /** Written to a temporary interference.config.json when given. */
  config?: unknown;
}

export interface Gateway extends RunningServer, GatewayClient {
  /** `<url>/v1` */
  base: string;
}

/** The environment every test gateway starts from: loopback port 0, quiet, the tiny model, folders in `dir`. */
export function baseTestEnv(dir: string): Record<string, string> {
  return {
    PORT: '0',
    HOST: '127.0.0.1',
    INTERFERENCE_LOG: '0',
    INTERFERENCE_LOCAL_MODEL: storiesModel,
    INTERFERENCE_LOCAL_CONTEXT: '512',
    INTERFERENCE_MODELS_DIR: path.join(dir, 'models'),
    INTERFERENCE_IMAGES_DIR: path.join(dir, 'images'),
  };
}

/** Starts the real server on 127.0.0.1:0 with a clean environment; the embedded model is the shared tiny one. */
export async function startGateway(options: GatewayOptions = {}): Promise<Gateway> {
  const dir = mkdtempSync(path.join(tmpdir(), 'interference-test-'));
  if (options.config !== undefined) writeFileSync(path.join(dir, 'interference.config.json'), JSON.stringify(options.config));
  const env: Record<string, string> = { ...baseTestEnv(dir), ...options.env };
  const running = await startServer(loadConfig(env, dir));
  const base = `${running.url}/v1`;
  return {
    ...running,
    base,
    ...gatewayClient(running.url),
    async close(graceMs?: number) {
      await running.close(graceMs);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export const userMessage = [{ role: 'user', content: 'Say hello' }];
