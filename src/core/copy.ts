/**
 * A shallow copy of a parsed JSON object's fields, made by a loop rather than a spread: spread
 * literals on the request path held each request's objects through young GCs (bench/README.md,
 * "GC, second finding"). A `__proto__` field, which JSON.parse makes an own field, is left out:
 * assigned to the copy, it would set the copy's prototype.
 */
export function copyFields(source: object | null | undefined): Record<string, unknown> {
  const copy: Record<string, unknown> = {};
  for (const field in source) if (field !== '__proto__') copy[field] = (source as Record<string, unknown>)[field];
  return copy;
}
