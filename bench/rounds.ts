/**
 * `--rounds N`: the c=1 and c=50 measurements are repeated N times and each figure reported is
 * the median over the rounds. On a shared 2-core machine one round can land on a busy moment;
 * the median of 3 is robust to one such round, where a mean is not.
 *
 * Counts (requests, failures) are summed, so that a failure in any round still shows. Peaks (RSS,
 * CPU of other processes) take the maximum, so that the noise check stays conservative.
 */
import type { SequentialResult, Stats } from './latency.js';

export function median(values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

export type Rule = 'median' | 'sum' | 'max';

/**
 * One record out of one per round: every numeric field combined by its rule (median unless
 * stated), every other field taken from the first round.
 */
export function combineRounds<T extends object>(rounds: readonly T[], rules: Partial<Record<keyof T, Rule>>): T {
  const first = rounds[0];
  if (first === undefined) throw new Error('combineRounds: no rounds');
  if (rounds.length === 1) return first;
  const combined: Record<string, unknown> = { ...(first as Record<string, unknown>) };
  const keys = new Set(rounds.flatMap((round) => Object.keys(round)));
  for (const name of keys) {
    const values = rounds.map((round) => (round as Record<string, unknown>)[name]).filter((v): v is number => typeof v === 'number');
    if (values.length === 0) continue;
    const rule = rules[name as keyof T] ?? 'median';
    combined[name] = rule === 'sum' ? values.reduce((a, b) => a + b, 0) : rule === 'max' ? Math.max(...values) : median(values);
  }
  return combined as T;
}

/** Median of each percentile; n is the total number of samples. */
function combineStats(list: ReadonlyArray<Stats | undefined>): Stats | undefined {
  const present = list.filter((s): s is Stats => s !== undefined);
  if (present.length === 0) return undefined;
  return combineRounds(present, { n: 'sum' });
}

export function combineSequential(rounds: readonly SequentialResult[]): SequentialResult {
  const first = rounds[0];
  if (first === undefined) throw new Error('combineSequential: no rounds');
  if (rounds.length === 1) return first;
  const attempts: Record<string, number> = {};
  for (const round of rounds) for (const [name, count] of Object.entries(round.attempts)) attempts[name] = (attempts[name] ?? 0) + count;
  const events = rounds.map((round) => round.events).filter((e): e is { min: number; max: number } => e !== undefined);
  const result: SequentialResult = {
    ok: rounds.reduce((sum, round) => sum + round.ok, 0),
    failed: rounds.reduce((sum, round) => sum + round.failed, 0),
    errors: [...new Set(rounds.flatMap((round) => round.errors))].slice(0, 5),
    attempts,
    firstSamples: first.firstSamples,
  };
  for (const name of ['total', 'firstEvent', 'firstContent', 'overhead', 'chunks'] as const) {
    const combined = combineStats(rounds.map((round) => round[name]));
    if (combined !== undefined) result[name] = combined;
  }
  if (events.length > 0) result.events = { min: Math.min(...events.map((e) => e.min)), max: Math.max(...events.map((e) => e.max)) };
  return result;
}
