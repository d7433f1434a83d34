import { collectDefaultMetrics, Counter, Gauge, Registry as MetricsRegistry } from 'prom-client';
import type { AttemptRecord } from '../core/failover.js';
import type { HealthBook } from '../core/health.js';
import type { Registry } from '../core/registry.js';
import { LabelledCounter, LabelledHistogram, type CounterChild, type HistogramChild } from './metric-series.js';

/**
 * The gateway's Prometheus metrics (prom-client), loaded by `GatewayMetrics` on first use. Each app
 * has its own registry (tests run many servers in one process); Node's process metrics are
 * collected once per process and merged in at scrape time. Labels are bounded: routes are
 * templates, providers are registry ids, statuses and outcomes are small sets.
 */
export class PrometheusMetrics {
  readonly #own = new MetricsRegistry();
  readonly #requests: LabelledCounter;
  readonly #duration: LabelledHistogram;
  readonly #overhead: LabelledHistogram;
  readonly #attempts: LabelledCounter;
  readonly #failovers: Counter;
  readonly #tokens: LabelledCounter;
  readonly #known: ReadonlySet<string>;
  /** Bounded: routes are templates, providers registry ids, statuses three digits. */
  readonly #series = new Map<string, { requests: CounterChild; duration: HistogramChild; overhead: HistogramChild }>();

  /** `redis`: the shared-state connection, when Redis is configured (its gauge is left out otherwise). */
  constructor(registry: Registry, health: HealthBook, redis?: { readonly up: boolean }) {
    const registers = [this.#own];
    this.#known = new Set(registry.all().map((entry) => entry.provider.id));
    this.#requests = new LabelledCounter(
      'interference_requests_total',
      'HTTP requests answered, by route template, provider that answered (empty if none) and status',
      ['route', 'provider', 'status'],
      registers,
    );
    this.#duration = new LabelledHistogram(
      'interference_request_duration_seconds',
      'Time from the request to the end of its answer (a stream: its last byte), by route and provider',
      ['route', 'provider'],
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers,
    );
    this.#overhead = new LabelledHistogram(
      'interference_overhead_seconds',
      "The gateway's own time per request: the whole request minus the upstream attempts",
      ['route'],
      [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1],
      registers,
    );
    this.#attempts = new LabelledCounter(
      'interference_attempts_total',
      'Upstream attempts, by provider and outcome (ok, or the failure kind: connection, timeout, rate_limit, auth, circuit_open, ...)',
      ['provider', 'outcome'],
      registers,
    );
    this.#failovers = new Counter({
      name: 'interference_failovers_total',
      help: 'Times a request moved on to another provider after an attempt failed',
      registers,
    });
    this.#tokens = new LabelledCounter(
      'interference_tokens_total',
      'Tokens the upstreams reported using, by provider and kind (prompt, completion)',
      ['provider', 'kind'],
      registers,
    );
    new Gauge({
      name: 'interference_provider_circuit_open',
      help: "1 while a provider's circuit breaker is open or half-open (requests skip it or probe it), else 0",
      labelNames: ['provider'],
      registers,
      collect() {
        for (const entry of registry.all()) this.set({ provider: entry.provider.id }, health.snapshot(entry.provider.id).circuit === 'closed' ? 0 : 1);
      },
    });
    if (redis !== undefined) {
      new Gauge({
        name: 'interference_redis_up',
        help: '1 while Redis (shared state between replicas) is reachable, else 0 (each replica then serves from its local state)',
        registers,
        collect() {
          this.set(redis.up ? 1 : 0);
        },
      });
    }
    const local = registry.all().find((entry) => entry.provider.load !== undefined)?.provider;
    new Gauge({
      name: 'interference_local_queue_depth',
      help: 'Requests waiting for a sequence of the embedded model (those generating are in interference_local_running)',
      registers,
      collect() {
        this.set(local?.load?.().waiting ?? 0);
      },
    });
    new Gauge({
      name: 'interference_local_running',
      help: 'Generations of the embedded model running now',
      registers,
      collect() {
        this.set(local?.load?.().running ?? 0);
      },
    });
  }

  /** A request is over (answered, left by its client, or cut). */
  requestEnded(route: string, provider: string | undefined, status: number, seconds: number, overheadSeconds: number): void {
    const who = provider !== undefined && this.#known.has(provider) ? provider : '';
    // On the hot path: one lookup for the three children of this label set.
    const key = `${route}\u0000${who}\u0000${status}`;
    let series = this.#series.get(key);
    if (series === undefined) {
      series = {
        requests: this.#requests.labels(route, who, String(status)),
        duration: this.#duration.labels(route, who),
        overhead: this.#overhead.labels(route),
      };
      this.#series.set(key, series);
    }
    series.requests.inc();
    series.duration.observe(seconds);
    series.overhead.observe(overheadSeconds);
  }

  attemptEnded(record: AttemptRecord): void {
    this.#attempts.labels(record.provider, record.outcome).inc();
  }

  failover(): void {
    this.#failovers.inc();
  }

  tokens(provider: string, usage: { prompt_tokens?: number; completion_tokens?: number }): void {
    const prompt = usage.prompt_tokens;
    const completion = usage.completion_tokens;
    if (typeof prompt === 'number' && Number.isFinite(prompt) && prompt > 0) this.#tokens.labels(provider, 'prompt').inc(prompt);
    if (typeof completion === 'number' && Number.isFinite(completion) && completion > 0) this.#tokens.labels(provider, 'completion').inc(completion);
  }

  /** The text exposition: this app's metrics and Node's process metrics. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    const merged = MetricsRegistry.merge([processMetrics(), this.#own]);
    return { contentType: merged.contentType, body: await merged.metrics() };
  }
}

let processRegistry: MetricsRegistry | undefined;

/** Node's default metrics (CPU, memory, event loop lag, GC, handles), collected once per process. */
function processMetrics(): MetricsRegistry {
  if (processRegistry === undefined) {
    processRegistry = new MetricsRegistry();
    collectDefaultMetrics({ register: processRegistry });
  }
  return processRegistry;
}
