/**
 * The request path's counters and histograms (src/server/metric-series.ts) against prom-client's
 * own Counter and Histogram: fed the same observations, each registry must print the same
 * exposition, line for line (bucket edges included: a value equal to a bound counts in that bucket).
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { Counter, Histogram, Registry } from 'prom-client';
import { LabelledCounter, LabelledHistogram } from '../../src/server/metric-series.js';

const bounds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1];
const observations: Array<[string, string, number]> = [
  ['/v1/chat/completions', 'Groq', 0.004],
  ['/v1/chat/completions', 'Groq', 0.005], // on a bound
  ['/v1/chat/completions', 'Groq', 0.0051],
  ['/v1/chat/completions', 'Groq', 0.3],
  ['/v1/chat/completions', '', 2.5], // past the last bound: +Inf only
  ['/v1/images/generate', 'OpenaiAPI', 1],
  ['/v1/chat/completions', 'we"ird\\name\n', 0.02], // a label value prom-client escapes
];

describe('metric series', () => {
  test('a labelled histogram prints what prom-client prints for the same observations', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const histogram = new LabelledHistogram('x_duration_seconds', 'Durations', ['route', 'provider'], bounds, [ours]);
    const reference = new Histogram({ name: 'x_duration_seconds', help: 'Durations', labelNames: ['route', 'provider'], buckets: bounds, registers: [theirs] });
    for (const [route, provider, value] of observations) {
      histogram.labels(route, provider).observe(value);
      reference.labels(route, provider).observe(value);
    }
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  test('a labelled counter prints what prom-client prints, increments by more than one included', async () => {
    const ours = new Registry();
    const theirs = new Registry();
    const counter = new LabelledCounter('x_tokens_total', 'Tokens', ['provider', 'kind'], [ours]);
    const reference = new Counter({ name: 'x_tokens_total', help: 'Tokens', labelNames: ['provider', 'kind'], registers: [theirs] });
    for (const [provider, kind, by] of [
      ['Groq', 'prompt', 12],
      ['Groq', 'completion', 30],
      ['Groq', 'prompt', 1],
      ['OpenaiAPI', 'prompt', 7],
    ] as const) {
      counter.labels(provider, kind).inc(by);
      reference.labels(provider, kind).inc(by);
    }
    counter.labels('Groq', 'completion').inc();
    reference.labels('Groq', 'completion').inc();
    assert.equal(await ours.metrics(), await theirs.metrics());
  });

  test('merged with another registry, as a scrape merges the process metrics in', async () => {
    const own = new Registry();
    const counter = new LabelledCounter('x_requests_total', 'Requests', ['status'], [own]);
    counter.labels('200').inc();
    const other = new Registry();
    new Counter({ name: 'x_other_total', help: 'Other', registers: [other] }).inc(2);
    const text = await Registry.merge([other, own]).metrics();
    assert.match(text, /^x_requests_total\{status="200"\} 1$/m);
    assert.match(text, /^x_other_total 2$/m);
  });
});
