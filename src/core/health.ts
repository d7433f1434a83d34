import type { FailureKind } from './errors.js';
import type { BreakerState, HealthSync } from './health-sync.js';

/**
 * Per-provider health from real traffic: a window of recent outcomes (success rate, median
 * latency), consecutive failures, and a circuit breaker. One error never disables a provider:
 * the breaker opens after `threshold` consecutive failures that say something about the provider
 * (refused, timeout, 5xx, 429, broken body), stays open for a cool-down (doubling while probes
 * keep failing), then lets one real request through as a probe.
 *
 * With replicas, a `HealthSync` attached to the book shares the breakers: the book stays the local
 * mirror the hot path reads synchronously, tells the sync of each outcome that changed a breaker,
 * takes the others' states through `apply`, and lets a probe through only when the sync says this
 * replica is the one to probe. The window (success rate, latency) stays this replica's own.
 */

export interface HealthOptions {
  /** Consecutive provider failures that open the breaker. */
  threshold: number;
  /** First cool-down; doubles after each failed probe up to `maxCooldownMs`. */
  cooldownMs: number;
  maxCooldownMs: number;
  /** Outcomes kept per provider. */
  window: number;
  now?: () => number;
}

export type Circuit = 'closed' | 'open' | 'half_open';

export interface HealthSnapshot {
  working: boolean;
  circuit: Circuit;
  consecutive_failures: number;
  /** Share of successes among the recent counted outcomes, or null before any. */
  success_rate: number | null;
  median_latency_ms: number | null;
  samples: number;
  /** When open: seconds until a probe is let through. */
  retry_in_s?: number;
}

export type Admission = { allowed: true; probe: boolean } | { allowed: false; retryInMs: number; consecutiveFailures: number };

/** Failures that tell about the provider, not about the request or its key. */
const counted = new Set<FailureKind>(['connection', 'timeout', 'server', 'rate_limit', 'bad_response']);

interface State {
  outcomes: boolean[];
  latencies: number[];
  consecutiveFailures: number;
  openUntil: number;
  cooldownMs: number;
  probing: boolean;
  /** The sync chose this replica to probe once the cool-down is over (replicas only). */
  probeGranted: boolean;
}

export class HealthBook {
  readonly #options: Required<HealthOptions>;
  readonly #states = new Map<string, State>();
  #sync: HealthSync | undefined;

  constructor(options: HealthOptions) {
    this.#options = { now: () => performance.now(), ...options };
  }

  #state(id: string): State {
    let state = this.#states.get(id);
    if (state === undefined) {
      state = {
        outcomes: [],
        latencies: [],
        consecutiveFailures: 0,
        openUntil: 0,
        cooldownMs: this.#options.cooldownMs,
        probing: false,
        probeGranted: false,
      };
      this.#states.set(id, state);
    }
    return state;
  }

  /** May a request go to this provider now? A request after the cool-down is the probe. */
  admit(id: string): Admission {
    const state = this.#states.get(id);
    if (state === undefined || state.consecutiveFailures < this.#options.threshold) return { allowed: true, probe: false };
    const wait = state.openUntil - this.#options.now();
    if (wait > 0 || state.probing) {
      return { allowed: false, retryInMs: Math.max(wait, 0), consecutiveFailures: state.consecutiveFailures };
    }
    // Replicas: one of them probes; the others keep skipping until they hear how the probe went.
    if (this.#sync !== undefined && !state.probeGranted && !this.#sync.mayProbe(id)) {
      return { allowed: false, retryInMs: 0, consecutiveFailures: state.consecutiveFailures };
    }
    state.probing = true;
    state.probeGranted = false;
    return { allowed: true, probe: true };
  }

  /** Shares the breakers with other replicas through `sync` (see `HealthSync`). */
  attach(sync: HealthSync): void {
    this.#sync = sync;
  }

  /** The breaker of `id` as this replica sees it. */
  breaker(id: string): BreakerState {
    const state = this.#states.get(id);
    if (state === undefined) return { consecutiveFailures: 0, cooldownMs: this.#options.cooldownMs, retryInMs: 0 };
    const open = state.consecutiveFailures >= this.#options.threshold;
    return {
      consecutiveFailures: state.consecutiveFailures,
      cooldownMs: state.cooldownMs,
      retryInMs: open ? Math.max(0, Math.ceil(state.openUntil - this.#options.now())) : 0,
    };
  }

  /**
   * Takes the breaker of `id` as the replicas share it (another replica's outcome, or the shared
   * store's state on reconnect). The window stays as it is, and so does a probe in flight here:
   * its outcome is still recorded.
   */
  apply(id: string, breaker: BreakerState): void {
    const state = this.#state(id);
    state.consecutiveFailures = breaker.consecutiveFailures;
    state.cooldownMs = breaker.cooldownMs;
    state.openUntil = breaker.consecutiveFailures >= this.#options.threshold ? this.#options.now() + breaker.retryInMs : 0;
    state.probeGranted = false;
  }

  /** This replica won the probe of half-open `id`: its next request there is the probe. Returns whether it applied. */
  grantProbe(id: string): boolean {
    const state = this.#states.get(id);
    if (state === undefined || state.consecutiveFailures < this.#options.threshold || state.probing) return false;
    if (state.openUntil > this.#options.now()) return false;
    state.probeGranted = true;
    return true;
  }

  /** Records an attempt's outcome. `aborted` (the client left) only ends a probe. */
  record(id: string, outcome: 'ok' | FailureKind, ms: number, retryAfterSeconds?: number): void {
    const state = this.#state(id);
    const wasProbe = state.probing;
    state.probing = false;
    state.probeGranted = false;
    if (outcome === 'ok') {
      push(state.outcomes, true, this.#options.window);
      push(state.latencies, ms, this.#options.window);
      // Only a success that changes the breaker is shared: the usual success costs the replicas nothing.
      const changed = state.consecutiveFailures > 0 || wasProbe;
      state.consecutiveFailures = 0;
      state.cooldownMs = this.#options.cooldownMs;
      state.openUntil = 0;
      if (changed) this.#sync?.recorded(id, { outcome: 'ok', probe: wasProbe, askedMs: 0, state: this.breaker(id) });
      return;
    }
    if (!counted.has(outcome)) return;
    push(state.outcomes, false, this.#options.window);
    state.consecutiveFailures += 1;
    const asked = retryAfterSeconds === undefined ? 0 : Math.min(retryAfterSeconds * 1000, this.#options.maxCooldownMs);
    if (state.consecutiveFailures >= this.#options.threshold) {
      if (wasProbe) state.cooldownMs = Math.min(state.cooldownMs * 2, this.#options.maxCooldownMs);
      state.openUntil = this.#options.now() + Math.max(state.cooldownMs, asked);
    }
    this.#sync?.recorded(id, { outcome: 'failure', probe: wasProbe, askedMs: asked, state: this.breaker(id) });
  }

  /**
   * Ends an attempt that says nothing about the provider (an error of our own): a probe in flight
   * is over, so the next request after the cool-down probes again, and nothing is counted.
   */
  settle(id: string): void {
    const state = this.#states.get(id);
    if (state !== undefined) state.probing = false;
  }

  /** The breaker settings, for a sync that computes shared states the way `record` does. */
  get settings(): { threshold: number; cooldownMs: number; maxCooldownMs: number } {
    return { threshold: this.#options.threshold, cooldownMs: this.#options.cooldownMs, maxCooldownMs: this.#options.maxCooldownMs };
  }

  snapshot(id: string): HealthSnapshot {
    const state = this.#states.get(id);
    if (state === undefined) return { working: true, circuit: 'closed', consecutive_failures: 0, success_rate: null, median_latency_ms: null, samples: 0 };
    const open = state.consecutiveFailures >= this.#options.threshold;
    const wait = state.openUntil - this.#options.now();
    // Open while cooling down; half-open once a probe may go (or is in flight).
    const circuit: Circuit = !open ? 'closed' : wait > 0 ? 'open' : 'half_open';
    const successes = state.outcomes.filter(Boolean).length;
    const rate = state.outcomes.length === 0 ? null : successes / state.outcomes.length;
    const snapshot: HealthSnapshot = {
      // Working: the breaker is closed and, once there are a few samples, most of them succeeded.
      working: circuit === 'closed' && (rate === null || state.outcomes.length < 5 || rate >= 0.5),
      circuit,
      consecutive_failures: state.consecutiveFailures,
      success_rate: rate === null ? null : Math.round(rate * 1000) / 1000,
      median_latency_ms: median(state.latencies),
      samples: state.outcomes.length,
    };
    if (circuit === 'open') snapshot.retry_in_s = Math.ceil(wait / 1000);
    return snapshot;
  }
}

function push<T>(list: T[], value: T, limit: number): void {
  list.push(value);
  if (list.length > limit) list.shift();
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round((sorted[Math.floor(sorted.length / 2)] as number) * 100) / 100;
}
