/**
 * The chat answer on stdout, as it streams, and who answered on stderr. stdout carries the answer
 * only, so `interference chat … > file` or `| less` get the text and nothing else.
 */
import { paint } from './style.js';

export class AnswerWriter {
  #last = '';
  provider: string | undefined;
  model: string | undefined;

  write(text: string | null | undefined): void {
    if (text === null || text === undefined || text === '') return;
    process.stdout.write(text);
    this.#last = text;
  }

  /** Ends the answer's last line, so a shell prompt does not start on it. */
  end(): void {
    if (this.#last !== '' && !this.#last.endsWith('\n')) process.stdout.write('\n');
    this.#last = '';
  }

  /** "answered by Groq (llama-3.3-70b)" on stderr: for a person at a terminal, or when asked (--verbose). */
  report(verbose: boolean): void {
    if (!verbose && process.stderr.isTTY !== true) return;
    if (this.provider === undefined && this.model === undefined) return;
    const model = this.model === undefined ? '' : ` (${this.model})`;
    process.stderr.write(paint(process.stderr, 'dim', `answered by ${this.provider ?? 'unknown provider'}${model}`) + '\n');
  }
}
