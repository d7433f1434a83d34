/** `interference models [--provider X]`: the models the running gateway offers, chat or image. */
import type { Command } from 'commander';
import { gatewayFrom, getJson, withClientOptions, type ClientFlags } from './http.js';
import { table, yesNo, type Column } from './style.js';

/** The fields of a GET /v1/models entry this command reads. */
interface ModelEntry {
  id: string;
  type?: string;
  image?: boolean;
  available?: boolean;
  providers?: string[];
}

interface ModelsFlags extends ClientFlags {
  provider?: string;
}

export function registerModels(program: Command): Command {
  return withClientOptions(
    program
      .command('models')
      .summary('list models and their type (chat or image)')
      .description('List the models of the running gateway, or of one provider, with their type (chat or image) and whether a configured provider serves them.')
      .option('--provider <id>', "only this provider's models"),
  ).action(async (flags: ModelsFlags) => {
    // gpt4free's per-provider route: the provider's own list, a 404 naming the closest ids when unknown.
    const path = flags.provider === undefined ? '/v1/models' : `/api/${encodeURIComponent(flags.provider)}/models`;
    const list = await getJson<{ data?: ModelEntry[] }>(gatewayFrom(flags), path);
    const models = list.data ?? [];
    const columns: Array<Column<ModelEntry>> = [
      { title: 'MODEL', value: (model) => model.id },
      { title: 'TYPE', value: (model) => model.type ?? (model.image === true ? 'image' : 'chat') },
      { title: 'AVAILABLE', value: (model) => yesNo(model.available !== false), style: (model) => (model.available === false ? 'dim' : undefined) },
    ];
    // With one provider named, the providers column would repeat it on every line.
    if (flags.provider === undefined) columns.push({ title: 'PROVIDERS', value: (model) => (model.providers ?? []).join(',') });
    process.stdout.write(table(process.stdout, columns, models));
  });
}
