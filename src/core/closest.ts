/**
 * Names close to one the user wrote (a provider id, a model id): for "did you mean" hints.
 * Bounded work on an error path: names over 64 characters are not compared letter by letter,
 * and at most `maxCandidates` names are looked at.
 */
export function closest(wanted: string, candidates: Iterable<string>, limit = 3): string[] {
  const lower = wanted.toLowerCase();
  if (lower.length === 0 || lower.length > maxCompared * 2) return [];
  const tail = lower.slice(lower.lastIndexOf('/') + 1);
  const scored: { name: string; score: number; gap: number }[] = [];
  let seen = 0;
  for (const name of candidates) {
    if (++seen > maxCandidates) break;
    const candidate = name.toLowerCase();
    const candidateTail = candidate.slice(candidate.lastIndexOf('/') + 1);
    let score: number;
    if (candidate === lower || (tail.length >= 3 && candidateTail === tail)) score = 0;
    else if (candidate.startsWith(lower))
      score = 1; // written in part
    else if (lower.startsWith(candidate) || (lower.length >= 3 && (candidate.includes(lower) || lower.includes(candidate) || candidateTail.includes(tail)))) {
      score = 2;
      // A near spelling beats a mere prefix.
      if (lower.length <= maxCompared && candidate.length <= maxCompared && Math.abs(lower.length - candidate.length) <= 1)
        score = Math.min(score, editDistance(lower, candidate));
    } else if (lower.length <= maxCompared && candidate.length <= maxCompared && Math.abs(lower.length - candidate.length) <= 3) {
      score = editDistance(lower, candidate);
    } else continue;
    if (score <= Math.max(2, Math.floor(lower.length / 3))) scored.push({ name, score, gap: Math.abs(candidate.length - lower.length) }); // equal scores: the nearer length first
  }
  return [
    ...new Map(scored.sort((a, b) => a.score - b.score || a.gap - b.gap || a.name.localeCompare(b.name)).map((entry) => [entry.name, entry])).keys(),
  ].slice(0, limit);
}

const maxCompared = 64;
const maxCandidates = 2000;

function editDistance(a: string, b: string): number {
  if (a === b) return 0;
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost);
    }
    previous = current;
  }
  return previous[b.length] as number;
}
