import type * as v from 'valibot';
import { invalidRequest, type ApiError } from '../../core/errors.js';

/**
 * Parse configuration for request bodies: the first issue is all a 400 reports, so valibot stops
 * at it (cheaper on bad input, and the order of the schema's entries is the order of the checks).
 */
export const firstIssueOnly = { abortEarly: true } as const;

type Issue = v.BaseIssue<unknown>;
type PathItem = NonNullable<Issue['path']>[number];

/** `messages[0].content[1]`: a path as the `param` of an OpenAI error. */
function paramOf(path: readonly PathItem[]): string | null {
  let param = '';
  for (const item of path) {
    const key = (item as { key: unknown }).key;
    if (item.type === 'array') param += `[${String(key)}]`;
    else param += param === '' ? String(key) : `.${String(key)}`;
  }
  return param === '' ? null : param;
}

/**
 * The 400 for a failed parse. The schemas' messages are predicates, so the message is
 * `<param> <predicate>`. `reportAt` moves an issue up to the field that owns it, for fields whose
 * errors name the whole value (`tools`, not `tools[3]`): each pattern's first group is the param.
 */
export function issueError(first: Issue, reportAt: readonly RegExp[] = []): ApiError {
  const { issue, path } = innermost(first);
  let param = paramOf(path);
  if (param !== null) {
    for (const pattern of reportAt) {
      const owner = pattern.exec(param)?.[1];
      if (owner !== undefined) {
        param = owner;
        break;
      }
    }
  }
  return invalidRequest(param === null ? issue.message : `${param} ${issue.message}`, param);
}

/**
 * A union that fails for every option reports one issue at its own level, its options' issues
 * inside. When an option got into the value (an array whose item is wrong: `content: [{"text"}]`),
 * that deeper issue says more: it is reported, at the union's path plus its own.
 */
function innermost(issue: Issue): { issue: Issue; path: PathItem[] } {
  let current = issue;
  const path = [...(issue.path ?? [])];
  for (;;) {
    if (current.type !== 'union' || current.issues === undefined) return { issue: current, path };
    let deeper: Issue | undefined;
    for (const inner of current.issues) if ((inner.path?.length ?? 0) > (deeper?.path?.length ?? 0)) deeper = inner;
    if (deeper === undefined) return { issue: current, path };
    path.push(...(deeper.path ?? []));
    current = deeper;
  }
}
