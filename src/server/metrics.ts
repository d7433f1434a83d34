import type { AttemptRecord } from '../core/failover.js';
import type { HealthBook } from '../core/health.js';
import type { Registry } from '../core/registry.js';
import type { PrometheusMetrics } from './prometheus.js';

/** Observations kept while prom-client loads (a few milliseconds); past this many, later ones are dropped. */
const maxPending = 10_000;

/**
 * The gateway's metrics, as the request path records them. prom-client (and the OpenTelemetry API
 * it imports) is loaded on the first observation or scrape, not at start: an idle gateway stays
 * ~2 MB smaller (62.1 against 59.8 MB, side by side). What is observed while it loads is recorded
 * once it has loaded, so counting starts with the first request.
 */
export class GatewayMetrics {
  readonly #create: () => Promise<PrometheusMetrics>;
  #loaded: PrometheusMetrics | undefined;
  #loading: Promise<PrometheusMetrics> | undefined;
  #pending: Array<(metrics: PrometheusMetrics) => void> = [];

  /** `redis`: the shared-state connection, when Redis is configured (its gauge is left out otherwise). */
  constructor(registry: Registry, health: HealthBook, redis?: { readonly up: boolean }) {
    this.#create = async () => new (await import('./prometheus.js')).PrometheusMetrics(registry, health, redis);
  }

  /** A request is over (answered, left by its client, or cut). */
  requestEnded(route: string, provider: string | undefined, status: number, seconds: number, overheadSeconds: number): void {
    const loaded = this.#loaded;
    if (loaded !== undefined) loaded.requestEnded(route, provider, status, seconds, overheadSeconds);
    else this.#later((metrics) => metrics.requestEnded(route, provider, status, seconds, overheadSeconds));
  }

  attemptEnded(record: AttemptRecord): void {
    const loaded = this.#loaded;
    if (loaded !== undefined) loaded.attemptEnded(record);
    else this.#later((metrics) => metrics.attemptEnded(record));
  }

  failover(): void {
    const loaded = this.#loaded;
    if (loaded !== undefined) loaded.failover();
    else this.#later((metrics) => metrics.failover());
  }

  tokens(provider: string, usage: { prompt_tokens?: number; completion_tokens?: number }): void {
    const loaded = this.#loaded;
    if (loaded !== undefined) loaded.tokens(provider, usage);
    else this.#later((metrics) => metrics.tokens(provider, usage));
  }

  /** The text exposition: this app's metrics and Node's process metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return (await this.#load()).scrape();
  }

  #later(record: (metrics: PrometheusMetrics) => void): void {
    if (this.#pending.length < maxPending) this.#pending.push(record);
    void this.#load().catch(() => undefined); // a scrape reports a failure to load
  }

  #load(): Promise<PrometheusMetrics> {
    this.#loading ??= this.#create().then((metrics) => {
      for (const record of this.#pending) record(metrics);
      this.#pending = [];
      this.#loaded = metrics;
      return metrics;
    });
    return this.#loading;
  }
}
