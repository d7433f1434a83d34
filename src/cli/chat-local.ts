/**
 * `interference chat --local`: the embedded model (the gateway's `Local` provider) run in this
 * process, configured from the environment like the server's (INTERFERENCE_LOCAL_MODEL,
 * INTERFERENCE_LOCAL_THREADS, INTERFERENCE_MODELS_DIR…). A model that must first be downloaded
 * shows a progress bar on stderr when it is a terminal; pipes stay quiet.
 */
import { Writable } from 'node:stream';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { UpstreamError } from '../core/errors.js';
import type { ChatMessage } from '../core/types.js';
import { createLocalProvider } from '../providers/local/local-provider.js';
import type { AnswerWriter } from './answer.js';
import { CliError, usageError } from './errors.js';

export interface LocalChatOptions {
  maxTokens: number | undefined;
  signal: AbortSignal;
  writer: AnswerWriter;
}

export async function chatLocally(messages: ChatMessage[], options: LocalChatOptions): Promise<void> {
  const config = localConfig();
  const provider = createLocalProvider({
    model: config.local.model,
    cacheDir: config.local.cacheDir,
    threads: config.local.threads,
    contextSize: config.local.contextSize,
    // One prompt at a time here: a second sequence would only cost memory.
    parallel: 1,
    ...(config.local.hfEndpoint === undefined ? {} : { hfEndpoint: config.local.hfEndpoint }),
    progressStream: process.stderr.isTTY === true ? process.stderr : discard(),
  });
  options.writer.provider = provider.id;
  options.writer.model = provider.defaultModel;
  try {
    const result = await provider.chat({
      request: {
        model: provider.defaultModel,
        messages,
        stream: true,
        ...(options.maxTokens === undefined ? {} : { max_tokens: options.maxTokens }),
      },
      apiKey: undefined,
      signal: options.signal,
      limits: config.upstreamLimits,
    });
    if (result.type === 'completion') {
      options.writer.write(result.completion.choices[0]?.message.content);
      return;
    }
    for await (const chunk of result.chunks) options.writer.write(chunk.choices[0]?.delta.content);
  } catch (error) {
    if (error instanceof UpstreamError && !options.signal.aborted) throw new CliError(1, error.message);
    throw error;
  } finally {
    await provider.close();
  }
}

/** The configuration from the environment and the config file (for its local-model settings). */
function localConfig(): Config {
  try {
    return loadConfig(process.env, process.cwd());
  } catch (error) {
    if (error instanceof ConfigError) throw usageError(error.message.split('\n').join('; '));
    throw error;
  }
}

/** Where download progress goes when stderr is not a terminal: nowhere. */
function discard(): Writable {
  return new Writable({
    write(_chunk, _encoding, done) {
      done();
    },
  });
}
