import * as v from 'valibot';
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

/**
 * How a dialect names a field: OpenAI's `input[0].content` (the message is `<param> <predicate>`)
 * or Anthropic's `messages.0.content` (`<param>: <predicate>`).
 */
export type ParamStyle = 'openai' | 'anthropic';

/**
 * Checks one part of a body (a field, a message, a block) with its schema, for the dialects whose
 * translators walk a body in their own order (a semantic check may come between two structural
 * ones). The first issue is the 400: its `param` is `at` followed by the issue's path (only `at`
 * with `flat`, for schemas whose predicate is about the whole part).
 */
export function checkPart<Schema extends v.GenericSchema>(schema: Schema, value: unknown, at: string, style: ParamStyle, flat = false): v.InferOutput<Schema> {
  const result = v.safeParse(schema, value, firstIssueOnly);
  if (result.success) return result.output;
  const issue = result.issues[0];
  let param = at;
  if (!flat) {
    for (const item of issue.path ?? []) {
      const key = String((item as { key: unknown }).key);
      param += style === 'openai' && item.type === 'array' ? `[${key}]` : `.${key}`;
    }
  }
  return throwAt(param, issue.message, style);
}

function throwAt(param: string, predicate: string, style: ParamStyle): never {
  throw invalidRequest(style === 'anthropic' ? `${param}: ${predicate}` : `${param} ${predicate}`, param);
}
