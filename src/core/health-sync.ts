/**
 * How a HealthBook shares its circuit breakers with other replicas, without knowing how (the edge,
 * src/state/shared-health.ts, does it over Redis). The book stays the synchronous local mirror on
 * the hot path: it tells the sync of each outcome that changed a breaker, and asks it before it
 * lets a half-open provider's probe through, so that one replica probes, not all of them.
 */

/** The part of a provider's health the replicas share: its breaker. */
export interface BreakerState {
  consecutiveFailures: number;
  /** The current cool-down (it doubles while probes keep failing). */
  cooldownMs: number;
  /** How long the breaker stays open from now (0: closed, or cooled down and half-open). */
  retryInMs: number;
}

/** An outcome that changed a breaker here, as `record` counted it. */
export interface BreakerOutcome {
  outcome: 'ok' | 'failure';
  /** The attempt was the half-open probe. */
  probe: boolean;
  /** A failure's `retry-after`, in ms, already capped (0: none). */
  askedMs: number;
  /** The breaker as this replica now sees it (what the others get while the shared store is down). */
  state: BreakerState;
}

export interface HealthSync {
  /** Called synchronously by `record` after an outcome changed the breaker of `id`: share it, without blocking. */
  recorded(id: string, outcome: BreakerOutcome): void;
  /**
   * The cool-down of `id` is over and no probe is in flight here: may this replica probe now?
   * `true` lets the request through as the probe (no shared store: every replica decides alone).
   * `false` skips it for now; the sync then asks the other replicas and, if this one wins, calls
   * the book's `grantProbe(id)` so that the next request here is the probe.
   */
  mayProbe(id: string): boolean;
}
