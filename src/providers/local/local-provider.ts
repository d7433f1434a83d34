/**
 * The `Local` provider: a GGUF model embedded through node-llama-cpp, loaded lazily on the first
 * call and answering every request (whatever `model` it names) with that one model, the way
 * llama.cpp's llama-server does in single-model mode. Always streams; the router aggregates.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { llamaCpp, type LlamaCpp } from './llama-module.js';
import { linkAbort } from '../../core/abort.js';
import type { Llama, LlamaContext, LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import { chatParamsWithout } from '../../core/params.js';
import { UpstreamError } from '../../core/errors.js';
import type { Availability, ChatCall, ChatResult, Provider } from '../../core/provider.js';
import type { ChatChunk, ChatRequest, FinishReason, Usage } from '../../core/types.js';
import { classifyModelSource, localPathOf, missingModelMessage, modelIdFromSource, resolveModelSource, type ResolveSourceOptions } from './model-source.js';
import { countPromptTokens, MAX_CHARS_PER_TOKEN, planPrompt, promptChars, sampling, type PromptPlan, type Sampling } from './prompt.js';
import { SequencePool, type Lease } from './sequence-pool.js';

export interface LocalOptions {
  /** A GGUF path, an `hf:` URI or an https URL. */
  model: string;
  /** Where `hf:`/URL models are downloaded to. */
  cacheDir: string;
  /** CPU threads; keep 1 on small machines (more threads can be ~1000× slower there). */
  threads: number;
  /** Tokens per sequence (prompt + completion). */
  contextSize: number;
  /** Requests generated at once; more wait in a FIFO queue. */
  parallel: number;
  hfEndpoint?: string;
  log?: (message: string) => void;
  /** Where a download's progress bar goes (default stderr); the CLI's `chat --local` silences it off a terminal. */
  progressStream?: ResolveSourceOptions['progressStream'];
}

const FIX_HINT = 'set INTERFERENCE_LOCAL_MODEL to a GGUF path (or an hf: URI)';

/** What the embedded model honours: sampling, stops and limits; no tools, JSON mode, logprobs or several choices. */
const PARAMS = chatParamsWithout(
  ['n', 'logit_bias', 'logprobs', 'top_logprobs', 'tools', 'tool_choice', 'parallel_tool_calls', 'response_format', 'user', 'reasoning_effort'],
  ['top_k'],
);

interface Engine {
  lib: LlamaCpp;
  llama: Llama;
  model: LlamaModel;
  context: LlamaContext;
  pool: SequencePool<LlamaContextSequence>;
}

type StopReason = 'eogToken' | 'stopGenerationTrigger' | 'customStopTrigger' | 'maxTokens' | 'abort' | 'functionCalls';
type Outcome = { ok: true; stopReason: StopReason; usage: Usage } | { ok: false; error: unknown };

/** One generation in flight. */
interface Job {
  /** Settles once the first token is out, or generation ended without one. */
  readonly started: Promise<void>;
  /** Settles (never rejects) after generation ended and the sequence went back to the pool. */
  readonly finished: Promise<Outcome>;
  outcome(): Outcome | undefined;
  stop(reason: Error): void;
  /** What `stop` was given first, if it was called. */
  stoppedBy(): Error | undefined;
  readonly pieces: PieceQueue;
}

function finishReason(stopReason: StopReason): FinishReason {
  return stopReason === 'maxTokens' ? 'length' : 'stop';
}

function abortedError(signal: AbortSignal): UpstreamError {
  const reason: unknown = signal.reason;
  const timeout = reason instanceof Error && reason.name === 'TimeoutError';
  return new UpstreamError(timeout ? 'timeout' : 'aborted', timeout ? 'local generation timed out' : 'request aborted', { cause: reason });
}

function failure(error: unknown, signal: AbortSignal): UpstreamError {
  if (error instanceof UpstreamError) return error;
  if (signal.aborted) return abortedError(signal);
  const message = error instanceof Error ? error.message : String(error);
  return new UpstreamError('server', `local generation failed: ${message}`, { cause: error });
}

/** `promise`, or an `aborted` rejection as soon as `signal` aborts (the work itself goes on). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortedError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** Text pieces from onTextChunk, handed to the stream as they come (a push/pull bridge). */
class PieceQueue {
  private readonly items: string[] = [];
  private wake: () => void = () => undefined;
  private ended = false;
  private scheduled = false;

  push(text: string): void {
    this.items.push(text);
    this.schedule();
  }

  end(): void {
    this.ended = true;
    this.schedule();
  }

  /**
   * Wakes the consumer on the next turn of the event loop, not in this microtask: the
   * generation loop first schedules the next token on its worker thread, so the consumer's
   * work (JSON, socket writes) overlaps with evaluation instead of delaying it.
   */
  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.wake();
    });
  }

  /** The next piece, or undefined once ended and drained. */
  async next(): Promise<string | undefined> {
    while (this.items.length === 0 && !this.ended) await new Promise<void>((resolve) => (this.wake = resolve));
    return this.items.shift();
  }
}

/** The OpenAI chunks of one generation: role, text pieces as they come, finish, usage. */
async function* stream(id: string, created: number, model: string, job: Job, signal: AbortSignal): AsyncGenerator<ChatChunk> {
  const chunk = (choices: ChatChunk['choices'], usage?: Usage): ChatChunk =>
    usage === undefined
      ? { id, object: 'chat.completion.chunk', created, model, choices }
      : { id, object: 'chat.completion.chunk', created, model, choices, usage };
  let done = false;
  try {
    yield chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null, logprobs: null }]);
    for (let piece = await job.pieces.next(); piece !== undefined; piece = await job.pieces.next()) {
      if (piece !== '') yield chunk([{ index: 0, delta: { content: piece }, finish_reason: null, logprobs: null }]);
    }
    const outcome = await job.finished;
    done = true;
    if (!outcome.ok) {
      const stoppedBy = job.stoppedBy();
      throw stoppedBy instanceof UpstreamError && !signal.aborted ? stoppedBy : failure(outcome.error, signal);
    }
    if (outcome.stopReason === 'abort') {
      const stoppedBy = job.stoppedBy();
      throw signal.aborted ? abortedError(signal) : stoppedBy instanceof UpstreamError ? stoppedBy : new UpstreamError('aborted', 'generation stopped');
    }
    yield chunk([{ index: 0, delta: {}, finish_reason: finishReason(outcome.stopReason), logprobs: null }]);
    yield chunk([], outcome.usage);
  } finally {
    if (!done) {
      // The consumer left early: stop generating and wait until the sequence is back in the pool.
      job.stop(new Error('stream closed by the consumer'));
      await job.finished;
    }
  }
}

/**
 * `return()` stops generation even when the generator has not started or is awaiting a piece
 * (a plain async generator would queue it), and resolves once the sequence is released.
 */
function cancellable(generator: AsyncGenerator<ChatChunk>, job: Job): AsyncIterableIterator<ChatChunk> {
  return {
    next: () => generator.next(),
    return: async () => {
      job.stop(new Error('stream closed by the consumer'));
      const result = await generator.return(undefined);
      await job.finished;
      return result;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

const RETRY_LOAD_AFTER_MS = 60_000;

/** What requests get once `close()` was called: queued, loading, or stopped mid-generation. */
function shuttingDown(): UpstreamError {
  return new UpstreamError('unavailable', 'the server is shutting down');
}

export interface LocalProvider extends Provider {
  chat(call: ChatCall): Promise<ChatResult>;
  /**
   * Shuts down; idempotent (every call returns the same promise). At once: requests queued for a
   * sequence or waiting for the model reject with an `unavailable` UpstreamError ("the server is
   * shutting down"), later calls reject the same way, and running generations are stopped (their
   * streams throw that error). Resolves once they have ended and the model is disposed.
   */
  close(): Promise<void>;
  /** Generations running now (for tests and diagnostics). */
  activeGenerations(): number;
}

export function createLocalProvider(options: LocalOptions): LocalProvider {
  const kind = classifyModelSource(options.model);
  const modelId = modelIdFromSource(options.model);
  const shutdown = new AbortController();
  const running = new Set<Job>();
  let loading: Promise<Engine> | undefined;
  let loadError: string | undefined;
  let loadErrorAt = 0;
  let loaded = false;
  let closed = false;
  let closing: Promise<void> | undefined;
  /** The engine once loaded (its pool is closed synchronously by `close()`). */
  let current: Engine | undefined;

  async function loadEngine(): Promise<Engine> {
    const started = Date.now();
    let modelPath: string;
    try {
      modelPath = await resolveModelSource(options.model, {
        cacheDir: options.cacheDir,
        hfEndpoint: options.hfEndpoint,
        signal: shutdown.signal,
        log: options.log,
        progressStream: options.progressStream,
      });
    } catch (error) {
      // A file that is missing or cannot be downloaded is a configuration state, not a health
      // failure: `unavailable`, with the cause kept for every later message.
      const message = error instanceof Error ? error.message : String(error);
      const from = kind === 'hf' ? ` from ${options.hfEndpoint ?? 'https://huggingface.co'}` : '';
      const text = message.startsWith('model file not found')
        ? message
        : `the embedded model ${options.model} could not be downloaded${from}: ${message}; ${FIX_HINT}`;
      throw new UpstreamError('unavailable', text, { cause: error });
    }
    let lib: LlamaCpp;
    let llama: Llama | undefined;
    let model: LlamaModel | undefined;
    try {
      lib = await llamaCpp();
      llama = await lib.getLlama({ gpu: false, build: 'never', logLevel: lib.LlamaLogLevel.error, maxThreads: options.threads });
      model = await llama.loadModel({ modelPath });
      const context = await model.createContext({ contextSize: options.contextSize, sequences: options.parallel, threads: options.threads });
      options.log?.(
        `local model ${modelId} loaded from ${modelPath} in ${Date.now() - started} ms (threads ${options.threads}, context ${options.contextSize} × ${options.parallel})`,
      );
      return { lib, llama, model, context, pool: SequencePool.forContext(context, options.parallel) };
    } catch (error) {
      await model?.dispose().catch(() => undefined);
      await llama?.dispose().catch(() => undefined);
      const message = error instanceof Error ? error.message : String(error);
      throw new UpstreamError('server', `cannot load local model ${modelPath}: ${message}; ${FIX_HINT}`, { cause: error });
    }
  }

  function load(): Promise<Engine> {
    loading ??= loadEngine().then(
      (engine) => {
        loadError = undefined;
        loaded = true;
        current = engine;
        if (closed) engine.pool.close(shuttingDown());
        return engine;
      },
      (error: unknown) => {
        loading = undefined; // the next call tries again
        loadError = error instanceof Error ? error.message : String(error);
        loadErrorAt = Date.now();
        throw error;
      },
    );
    return loading;
  }

  /** Starts generating on a leased sequence; the lease is released when generation ends. */
  function generate(lib: LlamaCpp, lease: Lease<LlamaContextSequence>, plan: PromptPlan, settings: Sampling, signal: AbortSignal): Job {
    const link = linkAbort(signal);
    const pieces = new PieceQueue();
    const sequence = lease.sequence;
    const meterStart = sequence.tokenMeter.getState();
    let markStarted: () => void = () => undefined;
    const firstToken = new Promise<void>((resolve) => (markStarted = resolve));
    const common = {
      ...settings,
      signal: link.signal,
      stopOnAbortSignal: true,
      onTextChunk: (text: string) => pieces.push(text),
      onToken: () => markStarted(),
    };
    let evaluator: { dispose(): void };
    let run: Promise<StopReason>;
    if (plan.kind === 'completion') {
      const completion = new lib.LlamaCompletion({ contextSequence: sequence });
      evaluator = completion;
      run = completion.generateCompletionWithMeta(plan.prompt, { ...common, disableContextShift: true }).then((r) => r.metadata.stopReason);
    } else {
      const chat = new lib.LlamaChat({ contextSequence: sequence, chatWrapper: plan.wrapper });
      evaluator = chat;
      run = chat.generateResponse(plan.history, common).then((r) => r.metadata.stopReason);
    }
    let outcome: Outcome | undefined;
    let stoppedBy: Error | undefined;
    const finished = run
      .then(
        (stopReason): Outcome => {
          const used = sequence.tokenMeter.diff(meterStart);
          const [prompt, completion] = [used.usedInputTokens, used.usedOutputTokens];
          return { ok: true, stopReason, usage: { prompt_tokens: prompt, completion_tokens: completion, total_tokens: prompt + completion } };
        },
        (error: unknown): Outcome => ({ ok: false, error }),
      )
      .then(async (result) => {
        outcome = result;
        link.unlink();
        pieces.end();
        evaluator.dispose();
        await lease.release().catch((error: unknown) => options.log?.(`local: releasing a sequence failed: ${String(error)}`));
        running.delete(job);
        return result;
      });
    const job: Job = {
      started: Promise.race([firstToken, finished.then(() => undefined)]),
      finished,
      outcome: () => outcome,
      stop: (reason) => {
        stoppedBy ??= reason;
        link.abort(reason);
      },
      stoppedBy: () => stoppedBy,
      pieces,
    };
    running.add(job);
    return job;
  }

  return {
    id: 'Local',
    label: 'Local (embedded llama.cpp)',
    url: 'https://github.com/withcatai/node-llama-cpp',
    parent: null,
    needsAuth: false,
    loginUrl: null,
    defaultModel: modelId,
    models: [modelId],
    imageModels: [],
    imageParams: [],
    visionModels: [],
    aliases: { local: modelId },
    supportsStream: true,
    params: PARAMS,

    activeGenerations: () => running.size,
    load: () => ({ running: current?.pool.active ?? 0, waiting: current?.pool.waiting ?? 0 }),

    availability(): Availability {
      if (closed) return { ok: false, reason: 'the local provider is closed' };
      // A failed load or download marks it unavailable for a minute, then real traffic retries it.
      const retryIn = loadErrorAt + RETRY_LOAD_AFTER_MS - Date.now();
      if (loadError !== undefined && retryIn > 0) return { ok: false, reason: `${loadError} (tried again by a request in ${Math.ceil(retryIn / 1000)} s)` };
      // Once loaded, the file no longer matters (and automatic routing asks on every request: no disk check then).
      if (!loaded && kind === 'path' && !existsSync(localPathOf(options.model))) return { ok: false, reason: missingModelMessage(localPathOf(options.model)) };
      return { ok: true };
    },

    async countTokens(request: ChatRequest, signal: AbortSignal): Promise<number> {
      if (closed) throw shuttingDown();
      const engine = await untilAborted(load(), signal);
      const chars = promptChars(request.messages);
      // Beyond the context it cannot run anyway; the length alone says so, without tokenizing megabytes.
      if (chars > engine.context.contextSize * MAX_CHARS_PER_TOKEN) return Math.ceil(chars / MAX_CHARS_PER_TOKEN);
      return countPromptTokens(engine.model, planPrompt(engine.lib, engine.model, request.messages));
    },

    async chat(call: ChatCall): Promise<ChatResult> {
      if (closed) throw shuttingDown();
      // A first call may download the model: a client that gives up stops waiting, the download goes on.
      let engine: Engine;
      try {
        engine = await untilAborted(load(), call.signal);
      } catch (error) {
        throw closed && !call.signal.aborted ? shuttingDown() : error;
      }
      if (closed) throw shuttingDown();
      // Refused by length before tokenizing (synchronous, on the event loop): see MAX_CHARS_PER_TOKEN.
      const chars = promptChars(call.request.messages);
      if (chars > engine.context.contextSize * MAX_CHARS_PER_TOKEN) {
        throw new UpstreamError(
          'bad_request',
          `the prompt is too long for the local model's context of ${engine.context.contextSize} tokens (${chars} characters; at most ${engine.context.contextSize * MAX_CHARS_PER_TOKEN} could fit)`,
        );
      }
      const plan = planPrompt(engine.lib, engine.model, call.request.messages);
      const promptTokens = countPromptTokens(engine.model, plan);
      const room = engine.context.contextSize - promptTokens;
      if (room < 1) {
        throw new UpstreamError(
          'bad_request',
          `the prompt (about ${promptTokens} tokens) does not fit the local model's context of ${engine.context.contextSize} tokens`,
        );
      }
      let lease: Lease<LlamaContextSequence>;
      try {
        lease = await engine.pool.acquire(call.signal);
      } catch (error) {
        throw call.signal.aborted ? abortedError(call.signal) : failure(error, call.signal);
      }
      if (closed) {
        // Handed a sequence just as the shutdown began: do not start generating.
        await lease.release().catch(() => undefined);
        throw shuttingDown();
      }
      const job = generate(engine.lib, lease, plan, sampling(call.request, room), call.signal);
      await job.started;
      if (closed && !call.signal.aborted) {
        // Stopped by the shutdown before its first token: no stream to hand over.
        job.stop(shuttingDown());
        await job.finished;
        throw shuttingDown();
      }
      const outcome = job.outcome();
      if (outcome !== undefined && !outcome.ok) throw failure(outcome.error, call.signal);
      const id = `chatcmpl-${randomBytes(12).toString('hex')}`;
      return { type: 'stream', chunks: cancellable(stream(id, Math.floor(Date.now() / 1000), modelId, job, call.signal), job) };
    },

    close(): Promise<void> {
      closing ??= (async () => {
        closed = true;
        // Waiters first, synchronously: a sequence freed by a stopped generation must not start another.
        current?.pool.close(shuttingDown());
        shutdown.abort(shuttingDown());
        const jobs = [...running];
        for (const job of jobs) job.stop(shuttingDown());
        await Promise.all(jobs.map((job) => job.finished));
        const engine = await loading?.catch(() => undefined);
        if (engine === undefined) return;
        engine.pool.close(shuttingDown());
        // A request that got its sequence just before close() was called may still be starting.
        for (const job of [...running]) job.stop(shuttingDown());
        await Promise.all([...running].map((job) => job.finished));
        await engine.context.dispose();
        await engine.model.dispose();
        await engine.llama.dispose();
      })();
      return closing;
    },
  };
}
