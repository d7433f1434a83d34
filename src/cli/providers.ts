/** `interference providers`: which providers the running gateway has, and whether prompts can go there. */
import type { Command } from 'commander';
import { gatewayFrom, getJson, withClientOptions, type ClientFlags } from './http.js';
import { table, yesNo, type Column } from './style.js';

/** The fields of a GET /v1/providers entry this command reads. */
export interface ProviderEntry {
  id: string;
  configured: boolean;
  working: boolean;
  needs_auth: boolean;
  /** A keyless public service: the prompts routed to it go to `public_hosts`. */
  public_service: boolean;
}

export function registerProviders(program: Command): Command {
  return withClientOptions(
    program
      .command('providers')
      .summary('list providers: configured, working, public')
      .description(
        "List the running gateway's providers: whether each is configured (has its key or URL), working (its recent calls succeed), and whether it is a public service that receives the prompts routed to it.",
      ),
  ).action(async (flags: ClientFlags) => {
    const entries = await getJson<ProviderEntry[]>(gatewayFrom(flags), '/v1/providers');
    const out = process.stdout;
    const columns: Array<Column<ProviderEntry>> = [
      { title: 'ID', value: (entry) => entry.id },
      { title: 'CONFIGURED', value: (entry) => yesNo(entry.configured), style: (entry) => (entry.configured ? undefined : 'dim') },
      { title: 'WORKING', value: (entry) => yesNo(entry.working), style: (entry) => (entry.working ? 'green' : entry.configured ? 'red' : 'dim') },
      { title: 'PUBLIC', value: (entry) => yesNo(entry.public_service), style: (entry) => (entry.public_service ? 'yellow' : undefined) },
    ];
    out.write(table(out, columns, entries));
  });
}
