/**
 * `interference chat "prompt"`: streams an answer from the running gateway token by token
 * (POST /v1/chat/completions with stream: true), or with --local from the embedded model, no
 * server needed. Ctrl-C aborts the request, and the gateway then cancels its upstream call.
 */
import { Option, type Command } from 'commander';
import type { ChatMessage } from '../core/types.js';
import { AnswerWriter } from './answer.js';
import { CliError, usageError } from './errors.js';
import { gatewayFrom, interrupted, request, sseData, withClientOptions, type ClientFlags } from './http.js';

interface ChatFlags extends ClientFlags {
  provider?: string;
  model?: string;
  system?: string;
  maxTokens?: number;
  local?: boolean;
  verbose?: boolean;
}

/** The fields of a streamed chunk (or of the error event that may end the stream) this command reads. */
interface StreamEvent {
  model?: string;
  provider?: string;
  choices?: Array<{ delta?: { content?: string | null } }>;
  error?: { message?: string };
}

export function registerChat(program: Command): Command {
  return withClientOptions(
    program
      .command('chat')
      .summary('stream an answer to a prompt (from the gateway, or --local)')
      .description('Stream an answer to stdout as it is generated. Without a prompt argument, the prompt is read from stdin when stdin is piped.')
      .argument('[prompt]', 'what to ask (default: stdin, when piped)')
      .option('--provider <id>', 'the provider to ask (default: the gateway chooses)')
      .option('--model <model>', 'the model to ask for')
      .option('--system <text>', 'a system message before the prompt')
      .addOption(new Option('--max-tokens <n>', 'most tokens to generate').argParser(positiveInteger('--max-tokens')))
      .option('--local', 'run the embedded model here, without a server (INTERFERENCE_LOCAL_MODEL etc. apply)')
      .option('--verbose', 'say which provider and model answered, on stderr, even when it is not a terminal'),
  ).action(async (prompt: string | undefined, flags: ChatFlags) => {
    if (flags.local === true && flags.provider !== undefined) throw usageError('--local runs the embedded model: it takes no --provider');
    const messages = await messagesFor(prompt, flags.system);
    const writer = new AnswerWriter();
    await withInterrupt(async (signal) => {
      try {
        if (flags.local === true) {
          // Loaded only here: node-llama-cpp is heavy, and the other commands never need it.
          const { chatLocally } = await import('./chat-local.js');
          await chatLocally(messages, { maxTokens: flags.maxTokens, signal, writer });
        } else {
          await chatWithGateway(messages, flags, signal, writer);
        }
      } finally {
        writer.end();
      }
    });
    writer.report(flags.verbose === true);
  });
}

async function chatWithGateway(messages: ChatMessage[], flags: ChatFlags, signal: AbortSignal, writer: AnswerWriter): Promise<void> {
  const gateway = gatewayFrom(flags);
  const body = {
    messages,
    stream: true,
    ...(flags.provider === undefined ? {} : { provider: flags.provider }),
    ...(flags.model === undefined ? {} : { model: flags.model }),
    ...(flags.maxTokens === undefined ? {} : { max_tokens: flags.maxTokens }),
  };
  const response = await request(gateway, '/v1/chat/completions', { method: 'POST', body, signal });
  writer.provider = response.headers.get('x-interference-provider') ?? undefined;
  try {
    for await (const data of sseData(response)) {
      if (data === '[DONE]') break;
      const event = JSON.parse(data) as StreamEvent;
      // After the first byte, failures arrive as an error event in the stream (the status is already 200).
      if (event.error !== undefined) throw new CliError(1, event.error.message ?? 'the stream ended with an error');
      writer.provider = event.provider ?? writer.provider;
      writer.model = event.model ?? writer.model;
      writer.write(event.choices?.[0]?.delta?.content);
    }
  } catch (error) {
    if (signal.aborted) throw interrupted();
    if (error instanceof CliError) throw error;
    throw new CliError(1, `the answer stream broke: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** The system message (if any) and the prompt: the argument, or stdin when it is piped. */
async function messagesFor(prompt: string | undefined, system: string | undefined): Promise<ChatMessage[]> {
  let text = prompt;
  if (text === undefined) {
    if (process.stdin.isTTY === true) throw usageError('chat: give a prompt, as an argument or on stdin (echo "Hello" | interference chat)');
    text = await readStdin();
  }
  if (text.trim() === '') throw usageError('chat: the prompt is empty');
  return [...(system === undefined ? [] : [{ role: 'system' as const, content: system }]), { role: 'user', content: text }];
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** Runs `work` with a signal that Ctrl-C aborts; an interrupted run ends with exit code 130. */
async function withInterrupt(work: (signal: AbortSignal) => Promise<void>): Promise<void> {
  const controller = new AbortController();
  const onInterrupt = (): void => controller.abort(new Error('interrupted'));
  process.once('SIGINT', onInterrupt);
  try {
    await work(controller.signal);
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof CliError && error.exitCode === 2)) throw interrupted();
    throw error;
  } finally {
    process.off('SIGINT', onInterrupt);
  }
}

export function positiveInteger(flag: string): (value: string) => number {
  return (value) => {
    if (!/^\d+$/.test(value) || Number(value) < 1) throw usageError(`${flag}: found ${JSON.stringify(value)}; expected a whole number of at least 1`);
    return Number(value);
  };
}
