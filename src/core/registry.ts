import { closest } from './closest.js';
import type { Provider } from './provider.js';

/** A provider as the gateway runs it: with its server-side key and routing flags. */
export interface RegistryEntry {
  readonly provider: Provider;
  /** Key from the config file or the environment; never serialised. */
  readonly serverKey: string | undefined;
  /** Whether automatic routing (no `provider` in the request) may pick it. */
  readonly autoRoute: boolean;
  /** Where the key is read from, for messages (`GROQ_API_KEY`, ...). */
  readonly keyVariables: readonly string[];
  /** The embedded model: tried last by automatic routing, whatever the model asked. */
  readonly lastResort?: boolean;
  /** The user configured it (a key or a base URL): automatic routing may use it for an empty `model`. */
  readonly configuredByUser: boolean;
  /**
   * A keyless public service (no key, not configured by the user, not on this machine): the hosts
   * that would receive prompts. Such entries are refused while public providers are turned off.
   */
  readonly publicHosts?: readonly string[];
}

export interface RegistryOptions {
  /** Keyless public services may receive prompts (INTERFERENCE_PUBLIC_PROVIDERS). */
  publicProviders: boolean;
}

/** Why a public service is refused when public providers are off (and what turns them on). */
export const publicOffReason = (entry: RegistryEntry): string =>
  `${entry.provider.id} is a keyless public service (${(entry.publicHosts ?? []).join(', ')}) and public providers are turned off (INTERFERENCE_PUBLIC_PROVIDERS=off): prompts stay on this machine and with providers that have keys`;

export interface Readiness {
  configured: boolean;
  reason: string | null;
}

export class Registry {
  readonly #entries: readonly RegistryEntry[];
  readonly #byId = new Map<string, RegistryEntry>();
  readonly #byLowerId = new Map<string, RegistryEntry>();

  readonly options: RegistryOptions;

  constructor(entries: readonly RegistryEntry[], options: RegistryOptions = { publicProviders: true }) {
    this.#entries = entries;
    this.options = options;
    for (const entry of entries) {
      const id = entry.provider.id;
      if (this.#byId.has(id)) throw new Error(`duplicate provider id ${id}`);
      this.#byId.set(id, entry);
      if (!this.#byLowerId.has(id.toLowerCase())) this.#byLowerId.set(id.toLowerCase(), entry);
    }
  }

  all(): readonly RegistryEntry[] {
    return this.#entries;
  }

  /** Exact id first, then case-insensitive. */
  find(id: string): RegistryEntry | undefined {
    return this.#byId.get(id) ?? this.#byLowerId.get(id.toLowerCase());
  }

  /** Up to three known ids close to `id` (edit distance, prefix or substring). */
  suggest(id: string): string[] {
    if (id.length > 64) return []; // no id is that long
    return closest(
      id,
      this.#entries.map((entry) => entry.provider.id),
    );
  }

  /** Whether the provider has what it needs to run now, and if not, why. */
  readiness(entry: RegistryEntry): Readiness {
    if (this.refusesPublic(entry)) return { configured: false, reason: publicOffReason(entry) };
    const availability = entry.provider.availability?.();
    if (availability !== undefined && !availability.ok) {
      return { configured: false, reason: availability.reason ?? `${entry.provider.id} is not available` };
    }
    if (entry.provider.needsAuth && entry.serverKey === undefined) {
      return { configured: false, reason: missingKeyMessage(entry) };
    }
    return { configured: true, reason: null };
  }

  /** A keyless public service while public providers are off (a key sent with the request lifts it). */
  refusesPublic(entry: RegistryEntry, requestKey?: string): boolean {
    return !this.options.publicProviders && entry.publicHosts !== undefined && requestKey === undefined;
  }
}

export function missingKeyMessage(entry: RegistryEntry): string {
  const variables = entry.keyVariables.join(' or ');
  const where = entry.provider.loginUrl ? ` (get one at ${entry.provider.loginUrl})` : '';
  return `${entry.provider.id} needs an API key${where}: set ${variables}, add "apiKey" to its entry in interference.config.json, or send "api_key" in the request`;
}
