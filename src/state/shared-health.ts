import type { HealthBook } from '../core/health.js';
import type { BreakerOutcome, BreakerState, HealthSync } from '../core/health-sync.js';
import type { SharedRedis } from './redis.js';

/**
 * The circuit breakers shared by the replicas over Redis (see `HealthSync`). Each provider's breaker
 * is a Redis hash `health:<id>` (consecutive failures, cool-down, open-until on Redis's clock, a
 * version) changed only by Lua scripts, so concurrent outcomes on several replicas add up. After
 * each change the new state is published on the `health` channel; the others apply it to their
 * local HealthBook when its version is newer than the last one they took. On (re)connect every
 * provider's shared state is loaded, merged with what this replica saw alone (the longer run of
 * failures wins: it is the view that saw more of the provider) and written back when ours was worse.
 *
 * The half-open probe: the first request that finds a provider cooled down asks for the lease
 * `probe:<id>` (SET NX PX, re-entrant for its holder) and is skipped meanwhile; the winner's next
 * request is the probe, the others keep skipping until they hear its outcome (which also frees the
 * lease), or until the lease expires (the winner died or got no more traffic).
 *
 * While Redis is down, nothing is shared: every replica counts and probes on its own.
 */

export interface SharedHealthOptions {
  /** The providers whose shared state is loaded on (re)connect. */
  providers: readonly string[];
  /** Longest a probe lease holds: a probe's outcome is known within the first-content deadline. */
  leaseMs: number;
  now?: () => number;
}

const channel = 'health';

/** Lua: one counted outcome, as HealthBook.record counts it, on the shared state. Returns the new state. */
const recordScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'failures', 'cooldown', 'openUntil', 'version')
local failures = tonumber(s[1]) or 0
local cooldown = tonumber(s[2]) or tonumber(ARGV[5])
local openUntil = tonumber(s[3]) or 0
if ARGV[1] == 'ok' then
  failures = 0
  cooldown = tonumber(ARGV[5])
  openUntil = 0
else
  failures = failures + 1
  if failures >= tonumber(ARGV[4]) then
    if ARGV[2] == '1' then cooldown = math.min(cooldown * 2, tonumber(ARGV[6])) end
    openUntil = now + math.max(cooldown, tonumber(ARGV[3]))
  end
end
if ARGV[2] == '1' and redis.call('GET', KEYS[2]) == ARGV[8] then redis.call('DEL', KEYS[2]) end
local version = math.max((tonumber(s[4]) or 0) + 1, now)
redis.call('HSET', KEYS[1], 'failures', failures, 'cooldown', cooldown, 'openUntil', openUntil, 'version', version)
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return {failures, cooldown, math.max(openUntil - now, 0), version}
`;

/** Lua: on (re)connect, this replica's view against the shared one; the longer run of failures wins. Returns the state and whether ours was written. */
const mergeScript = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local s = redis.call('HMGET', KEYS[1], 'failures', 'cooldown', 'openUntil', 'version')
local failures = tonumber(s[1]) or 0
local cooldown = tonumber(s[2]) or tonumber(ARGV[4])
local openUntil = tonumber(s[3]) or 0
local version = tonumber(s[4]) or 0
local written = 0
if tonumber(ARGV[1]) > failures then
  failures = tonumber(ARGV[1])
  cooldown = math.max(cooldown, tonumber(ARGV[2]))
  if tonumber(ARGV[3]) > 0 then openUntil = math.max(openUntil, now + tonumber(ARGV[3])) end
  version = math.max(version + 1, now)
  redis.call('HSET', KEYS[1], 'failures', failures, 'cooldown', cooldown, 'openUntil', openUntil, 'version', version)
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  written = 1
end
return {failures, cooldown, math.max(openUntil - now, 0), version, written}
`;

/** Lua: the probe lease; its holder may take it again (it skipped a request while asking). */
const claimScript = `
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then return 1 end
if holder then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
`;

/** A shared breaker and its version (Redis time in ms, or one more than the last). */
interface Versioned {
  state: BreakerState;
  version: number;
}

/** What the custom commands return (ioredis has no types for them). */
type ScriptReply = number[];
type Scripted = {
  healthRecord(...args: Array<string | number>): Promise<ScriptReply>;
  healthMerge(...args: Array<string | number>): Promise<ScriptReply>;
  healthClaim(...args: Array<string | number>): Promise<number>;
};

export class SharedHealth implements HealthSync {
  readonly #redis: SharedRedis;
  readonly #book: HealthBook;
  readonly #options: SharedHealthOptions;
  readonly #now: () => number;
  readonly #scripts: Scripted;
  /** Idle shared breakers expire: long enough to outlive the longest cool-down. */
  readonly #ttlMs: number;
  /** The newest version taken per provider: older messages (delivered late) are ignored. */
  readonly #versions = new Map<string, number>();
  /** Providers whose probe lease is being asked for now. */
  readonly #claiming = new Set<string>();
  /** Providers whose lease another replica holds: no asking again before then (local clock). */
  readonly #waitUntil = new Map<string, number>();
  readonly #unsubscribe: () => void;

  constructor(redis: SharedRedis, book: HealthBook, options: SharedHealthOptions) {
    this.#redis = redis;
    this.#book = book;
    this.#options = options;
    this.#now = options.now ?? (() => performance.now());
    this.#ttlMs = 2 * book.settings.maxCooldownMs + 60_000;
    const client = redis.client;
    client.defineCommand('healthRecord', { numberOfKeys: 2, lua: recordScript });
    client.defineCommand('healthMerge', { numberOfKeys: 1, lua: mergeScript });
    client.defineCommand('healthClaim', { numberOfKeys: 1, lua: claimScript });
    this.#scripts = client as unknown as Scripted;
    redis.subscribe(channel, (message) => this.#received(message));
    this.#unsubscribe = redis.onChange((up) => {
      if (up) void this.load();
    });
    book.attach(this);
    if (redis.up) void this.load();
  }

  /** Stops listening for reconnects (the connection itself is the caller's to close). */
  close(): void {
    this.#unsubscribe();
  }

  recorded(id: string, outcome: BreakerOutcome): void {
    if (!this.#redis.up) return; // alone for now: the merge on reconnect shares what was missed
    const { threshold, cooldownMs, maxCooldownMs } = this.#book.settings;
    this.#scripts
      .healthRecord(
        healthKey(id),
        leaseKey(id),
        outcome.outcome,
        outcome.probe ? 1 : 0,
        Math.round(outcome.askedMs),
        threshold,
        cooldownMs,
        maxCooldownMs,
        this.#ttlMs,
        this.#redis.replicaId,
      )
      .then((reply) => {
        const shared = fromReply(reply);
        if (this.#take(id, shared)) this.#publish(id, shared);
      })
      .catch(() => undefined); // Redis went away mid-way: the local state stands
  }

  mayProbe(id: string): boolean {
    if (!this.#redis.up) return true;
    const until = this.#waitUntil.get(id);
    if (until !== undefined && this.#now() < until) return false;
    void this.#claim(id);
    return false;
  }

  /** Loads every provider's shared breaker, writing back ours where it saw more failures (on connect and reconnect). */
  async load(): Promise<void> {
    const { cooldownMs } = this.#book.settings;
    // Versions restart with the shared state (Redis may have restarted empty): take what it says now.
    this.#versions.clear();
    this.#waitUntil.clear();
    await Promise.all(
      this.#options.providers.map(async (id) => {
        const mine = this.#book.breaker(id);
        try {
          const reply = await this.#scripts.healthMerge(healthKey(id), mine.consecutiveFailures, mine.cooldownMs, mine.retryInMs, cooldownMs, this.#ttlMs);
          const shared = fromReply(reply);
          if (this.#take(id, shared) && reply[4] === 1) this.#publish(id, shared);
        } catch {
          // Down again: the next reconnect loads it.
        }
      }),
    );
  }

  async #claim(id: string): Promise<void> {
    if (this.#claiming.has(id)) return;
    this.#claiming.add(id);
    try {
      const won = await this.#scripts.healthClaim(leaseKey(id), this.#redis.replicaId, this.#options.leaseMs);
      if (won === 1) this.#book.grantProbe(id);
      else this.#waitUntil.set(id, this.#now() + this.#options.leaseMs);
    } catch {
      this.#book.grantProbe(id); // Redis is unreachable: this replica decides alone
    } finally {
      this.#claiming.delete(id);
    }
  }

  /** Applies a shared state newer than the last one taken; returns whether it was. */
  #take(id: string, shared: Versioned): boolean {
    if (shared.version <= (this.#versions.get(id) ?? -1)) return false;
    this.#versions.set(id, shared.version);
    this.#waitUntil.delete(id); // the probe (if any) is over: the next cool-down starts a new claim
    this.#book.apply(id, shared.state);
    return true;
  }

  #publish(id: string, shared: Versioned): void {
    this.#redis.publish(channel, JSON.stringify({ id, ...shared.state, version: shared.version }));
  }

  #received(message: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(message);
    } catch {
      return;
    }
    if (typeof parsed !== 'object' || parsed === null) return;
    const { id, consecutiveFailures, cooldownMs, retryInMs, version } = parsed as Record<string, unknown>;
    if (typeof id !== 'string' || !this.#options.providers.includes(id)) return;
    if (![consecutiveFailures, cooldownMs, retryInMs, version].every((value) => typeof value === 'number' && Number.isFinite(value) && value >= 0)) return;
    this.#take(id, {
      state: { consecutiveFailures: consecutiveFailures as number, cooldownMs: cooldownMs as number, retryInMs: retryInMs as number },
      version: version as number,
    });
  }
}

function healthKey(id: string): string {
  return `health:${id}`;
}

function leaseKey(id: string): string {
  return `probe:${id}`;
}

function fromReply(reply: ScriptReply): Versioned {
  const [consecutiveFailures = 0, cooldownMs = 0, retryInMs = 0, version = 0] = reply.map(Number);
  return { state: { consecutiveFailures, cooldownMs, retryInMs }, version };
}
