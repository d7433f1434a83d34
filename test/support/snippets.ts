import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/** A python3 that can `import requests` (the pyenv one, or Debian's python3-requests). */
export async function pythonWithRequests(): Promise<string> {
  for (const candidate of ['python3', '/usr/bin/python3']) {
    try {
      await run(candidate, ['-c', 'import requests']);
      return candidate;
    } catch {
      // try the next one
    }
  }
  throw new Error('no python3 with the requests package: apt-get install python3-requests (.ci/run does)');
}

/**
 * Runs a documented snippet (Python with requests, or shell) as written, with only the documented
 * address `http://localhost:1337` changed to the test server's; returns what it printed.
 */
export async function runSnippet(language: 'python' | 'bash', code: string, url: string): Promise<string> {
  const text = code.replaceAll('http://localhost:1337', url);
  const command = language === 'python' ? await pythonWithRequests() : 'bash';
  const args = language === 'python' ? ['-c', text] : ['-c', `set -euo pipefail\n${text}`];
  const { stdout } = await run(command, args, { timeout: 30_000 });
  return stdout;
}
