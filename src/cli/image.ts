/**
 * `interference image "prompt" -o file.png`: one image from the running gateway
 * (POST /v1/images/generate, response_format b64_json), written to a file. An existing file is
 * kept unless --force: a second run must not silently replace the first picture.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { sniffImage } from '../core/image-bytes.js';
import { CliError, usageError } from './errors.js';
import { gatewayFrom, readJson, request, withClientOptions, type ClientFlags } from './http.js';
import { paint } from './style.js';

interface ImageFlags extends ClientFlags {
  output: string;
  provider?: string;
  model?: string;
  size?: string;
  force?: boolean;
  verbose?: boolean;
}

/** The fields of the images response this command reads. */
interface ImagesResponse {
  data?: Array<{ b64_json?: string }>;
  model?: string;
  provider?: string;
}

export function registerImage(program: Command): Command {
  return withClientOptions(
    program
      .command('image')
      .summary('generate an image into a file')
      .description('Generate an image from a prompt and write it to a file (PNG or JPEG, as the provider makes it).')
      .argument('<prompt>', 'what to draw')
      .requiredOption('-o, --output <file>', 'the file to write')
      .option('--provider <id>', 'the provider to ask (default: the gateway chooses)')
      .option('--model <model>', 'the image model to ask for')
      .addOption(new Option('--size <WxH>', 'image size, such as 1024x1024').argParser(imageSize))
      .option('--force', 'overwrite the file if it exists')
      .option('--verbose', 'say which provider and model made it, on stderr, even when it is not a terminal'),
  ).action(async (prompt: string, flags: ImageFlags) => {
    // Checked before asking: an image can take minutes to make.
    if (flags.force !== true && existsSync(flags.output)) throw usageError(`${flags.output} already exists; use --force to overwrite it`);
    const body = {
      prompt,
      response_format: 'b64_json',
      ...(flags.provider === undefined ? {} : { provider: flags.provider }),
      ...(flags.model === undefined ? {} : { model: flags.model }),
      ...(flags.size === undefined ? {} : { size: flags.size }),
    };
    const gateway = gatewayFrom(flags);
    const answer = await readJson<ImagesResponse>(gateway, '/v1/images/generate', await request(gateway, '/v1/images/generate', { method: 'POST', body }));
    const encoded = answer.data?.[0]?.b64_json;
    if (encoded === undefined) throw new CliError(1, 'the gateway answered without an image (no data[0].b64_json)');
    const bytes = Buffer.from(encoded, 'base64');
    const format = sniffImage(bytes);
    if (format === undefined) throw new CliError(1, 'the gateway answered with bytes that are not an image');
    write(flags.output, bytes, flags.force === true);
    if (flags.verbose === true || process.stderr.isTTY === true) {
      const by = answer.provider === undefined ? '' : ` by ${answer.provider}${answer.model === undefined ? '' : ` (${answer.model})`}`;
      process.stderr.write(paint(process.stderr, 'dim', `wrote ${flags.output}: ${format.extension.toUpperCase()}, ${bytes.length} bytes, made${by}`) + '\n');
    }
  });
}

function write(file: string, bytes: Buffer, force: boolean): void {
  try {
    // 'wx' fails if the file appeared while the image was being made.
    writeFileSync(file, bytes, { flag: force ? 'w' : 'wx' });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw usageError(`${file} already exists; use --force to overwrite it`);
    throw new CliError(1, `cannot write ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

function imageSize(value: string): string {
  if (!/^[1-9]\d{0,4}x[1-9]\d{0,4}$/.test(value)) throw usageError(`--size: found ${JSON.stringify(value)}; expected WIDTHxHEIGHT such as 1024x1024`);
  return value;
}
