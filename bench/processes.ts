/**
 * Child processes of the benchmark: start (and wait until ready), stop, and read their memory
 * and CPU time from /proc. Every process started here is remembered and killed when the runner
 * exits, is interrupted or crashes, so a run never leaves anything behind.
 */
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';

export interface Managed {
  name: string;
  child: ChildProcess;
  pid: number;
  /** The last few KB of stdout+stderr, for error messages. */
  output(): string;
  exited(): boolean;
}

const running = new Set<Managed>();
const stopping = new Set<number>();
const unexpected: string[] = [];
const TAIL_BYTES = 8192;
let report: (line: string) => void = () => undefined;

/**
 * `--pin`: the core each process runs on, by its name (undefined: wherever the scheduler puts it).
 * Set with `pinProcesses`; applied with `taskset` to every thread of a process as it starts
 * (threads made later inherit it) and to the runner itself.
 */
let coreOf: ((name: string) => number | undefined) | undefined;

export function pinProcesses(rule: (name: string) => number | undefined, runnerCore: number): void {
  coreOf = rule;
  pin('runner', process.pid, runnerCore);
}

function pin(name: string, pid: number, core: number | undefined): void {
  if (core === undefined) return;
  try {
    execFileSync('taskset', ['-a', '-p', '-c', String(core), String(pid)], { stdio: 'ignore' });
  } catch (error) {
    throw new Error(`--pin: taskset could not pin ${name} (pid ${pid}) to core ${core}: ${(error as Error).message}`);
  }
}

export interface StartOptions {
  name: string;
  command: string;
  args: string[];
  env: Record<string, string>;
  cwd: string;
  /** Readiness: the first match of this in stdout+stderr. */
  ready: RegExp;
  timeoutMs?: number;
  /**
   * Sends the child's stderr to this file instead of a pipe to the runner (readiness is then also
   * looked for in the file's first 64 KB): a request log goes to a file, as a service's would, and
   * the runner, which is also the c=1 client, does not spend its own time reading it.
   */
  stderrFile?: string;
}

function track(name: string, child: ChildProcess, oneShot: boolean, onText?: (text: string) => void): Managed {
  if (child.pid === undefined) throw new Error(`${name}: spawn failed`);
  let tail = '';
  let exited = false;
  const collect = (data: Buffer): void => {
    const text = data.toString();
    tail = (tail + text).slice(-TAIL_BYTES);
    onText?.(text);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  const managed: Managed = { name, child, pid: child.pid, output: () => tail, exited: () => exited };
  pin(name, child.pid, coreOf?.(name));
  child.once('exit', (code, signal) => {
    exited = true;
    running.delete(managed);
    if (!stopping.has(managed.pid) && !oneShot) {
      const line = `${name} (pid ${managed.pid}) exited unexpectedly (${signal ?? `code ${code}`}); last output:\n${tail.slice(-2000)}`;
      unexpected.push(line);
      report(line);
    }
  });
  running.add(managed);
  return managed;
}

/** Starts a long-running process and resolves once `ready` matched its output. */
export async function start(options: StartOptions): Promise<{ proc: Managed; match: RegExpExecArray }> {
  const stderrFd = options.stderrFile === undefined ? undefined : openSync(options.stderrFile, 'a');
  const child = spawn(options.command, options.args, { cwd: options.cwd, env: options.env, stdio: ['ignore', 'pipe', stderrFd ?? 'pipe'] });
  if (stderrFd !== undefined) closeSync(stderrFd); // the child has its own copy
  let seen = '';
  let onReady: ((match: RegExpExecArray) => void) | undefined;
  const proc = track(options.name, child, false, (text) => {
    if (onReady === undefined) return;
    seen += text;
    const match = options.ready.exec(seen);
    if (match) {
      onReady(match);
      onReady = undefined;
      seen = '';
    }
  });
  if (options.stderrFile !== undefined) {
    const file = options.stderrFile;
    const piped = proc.output;
    proc.output = () => `${piped()}${fileTail(file)}`;
  }
  const timeoutMs = options.timeoutMs ?? 30_000;
  let poll: NodeJS.Timeout | undefined;
  try {
    const match = await new Promise<RegExpExecArray>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${options.name} not ready after ${timeoutMs} ms:\n${proc.output()}`)), timeoutMs);
      onReady = (m) => {
        clearTimeout(timer);
        clearInterval(poll);
        resolve(m);
      };
      const file = options.stderrFile;
      if (file !== undefined) {
        poll = setInterval(() => {
          const found = options.ready.exec(fileHead(file));
          if (found !== null) onReady?.(found);
        }, 50);
      }
      child.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`${options.name} exited (${code ?? signal}) before it was ready:\n${proc.output()}`));
      });
    });
    return { proc, match };
  } catch (error) {
    await stop(proc);
    throw error;
  } finally {
    clearInterval(poll);
  }
}

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (killed after `timeoutMs`). `onStart` gets the process, e.g. to sample its CPU. */
export async function run(
  name: string,
  command: string,
  args: string[],
  options: { cwd: string; env?: Record<string, string>; timeoutMs: number; onStart?: (proc: Managed) => void },
): Promise<Finished> {
  const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (data: Buffer) => (stdout += data.toString()));
  child.stderr?.on('data', (data: Buffer) => (stderr += data.toString()));
  const proc = track(name, child, true);
  options.onStart?.(proc);
  const timer = setTimeout(() => {
    stderr += `\n[bench] ${name} killed after ${options.timeoutMs} ms`;
    void stop(proc);
  }, options.timeoutMs);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (exitCode) => resolve(exitCode));
  });
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/** SIGTERM, then SIGKILL after `graceMs`. Resolves once the process is gone. */
export async function stop(proc: Managed, graceMs = 3000): Promise<void> {
  if (proc.exited()) return;
  stopping.add(proc.pid);
  const gone = new Promise<void>((resolve) => proc.child.once('exit', () => resolve()));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => {
    if (!proc.exited()) proc.child.kill('SIGKILL');
  }, graceMs);
  await gone;
  clearTimeout(timer);
}

export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((proc) => stop(proc)));
}

/** Pids of every process started here that is still running. */
export function managedPids(): number[] {
  return [...running].map((proc) => proc.pid);
}

/** Long-running processes that exited without being stopped (a crash, or killed from outside). */
export function unexpectedExits(): readonly string[] {
  return unexpected;
}

export function stillRunning(): string[] {
  return [...running].map((proc) => `${proc.name} (pid ${proc.pid})`);
}

let installed = false;

/** Kills every started process on exit, SIGINT/SIGTERM and uncaught errors. */
export function installCleanup(log: (line: string) => void): void {
  if (installed) return;
  installed = true;
  report = log;
  process.on('exit', () => {
    for (const proc of running) {
      try {
        proc.child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  });
  const bail = (code: number, why: string): void => {
    log(why);
    const hardStop = setTimeout(() => process.exit(code), 5000);
    hardStop.unref();
    stopAll().finally(() => process.exit(code));
  };
  process.once('SIGINT', () => bail(130, 'interrupted: stopping every process the bench started'));
  process.once('SIGTERM', () => bail(143, 'terminated: stopping every process the bench started'));
  process.on('uncaughtException', (error) => bail(1, `uncaught: ${error.stack ?? error.message}`));
  process.on('unhandledRejection', (reason) => bail(1, `unhandled rejection: ${reason instanceof Error ? (reason.stack ?? reason.message) : String(reason)}`));
}

// ---------------------------------------------------------------------------------------------
// /proc readings
// ---------------------------------------------------------------------------------------------

function statusField(pid: number, field: 'VmRSS' | 'VmHWM'): number | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const match = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return match ? Number(match[1]) / 1024 : undefined;
  } catch {
    return undefined;
  }
}

/** Resident set size, MB (MiB). */
export function rssMB(pid: number): number | undefined {
  return statusField(pid, 'VmRSS');
}

/** Peak resident set size since the process started, MB (MiB). */
export function peakRssMB(pid: number): number | undefined {
  return statusField(pid, 'VmHWM');
}

let clockTicks: number | undefined;

function ticksPerSecond(): number {
  if (clockTicks === undefined) {
    try {
      clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clockTicks = 100;
    }
  }
  return clockTicks;
}

/** User + system CPU time, seconds. */
export function cpuSeconds(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which is in parentheses and may contain spaces.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
    const utime = Number(fields[11]);
    const stime = Number(fields[12]);
    return (utime + stime) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

/** CPU time the whole machine spent busy (all cores, user+nice+system+irq+softirq+steal), seconds. */
export function systemBusySeconds(): number | undefined {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const [user, nice, system, , , irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number);
    return ((user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0)) / ticksPerSecond();
  } catch {
    return undefined;
  }
}

export interface Sampler {
  /** Stops sampling; the highest RSS seen per pid, MB. */
  stop(): Map<number, number>;
}

/** Samples the RSS of `pids` every `intervalMs` and keeps the maximum. */
export function sampleRss(pids: readonly number[], intervalMs = 200): Sampler {
  const max = new Map<number, number>();
  const tick = (): void => {
    for (const pid of pids) {
      const value = rssMB(pid);
      if (value !== undefined && value > (max.get(pid) ?? 0)) max.set(pid, value);
    }
  };
  tick();
  const timer = setInterval(tick, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      tick();
      return max;
    },
  };
}

/** The last few KB of a file (a child's stderr sent to a file), or nothing. */
function fileTail(file: string): string {
  try {
    const size = statSync(file).size;
    const fd = openSync(file, 'r');
    try {
      const length = Math.min(size, TAIL_BYTES);
      const buffer = Buffer.alloc(length);
      readSync(fd, buffer, 0, length, size - length);
      return buffer.toString('utf8');
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}

/** The first 64 KB of a file (where a child prints that it is ready), or nothing. */
function fileHead(file: string): string {
  try {
    const fd = openSync(file, 'r');
    try {
      const buffer = Buffer.alloc(64 * 1024);
      return buffer.toString('utf8', 0, readSync(fd, buffer, 0, buffer.length, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return '';
  }
}
