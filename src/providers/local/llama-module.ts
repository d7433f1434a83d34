/**
 * node-llama-cpp, imported on first use: the library (and its native addon) costs ~40 MB of
 * memory and ~0.4 s of start-up, which a gateway that never runs the embedded model should not pay.
 */
export type LlamaCpp = typeof import('node-llama-cpp');

let loading: Promise<LlamaCpp> | undefined;

export function llamaCpp(): Promise<LlamaCpp> {
  loading ??= import('node-llama-cpp');
  return loading;
}
