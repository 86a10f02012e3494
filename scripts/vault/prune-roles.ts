// `vault configure --prune` for a secrets-engine mount vaultlab owns whole ([[databases]],
// [[kubernetes_roles]]): the roles on it that the config no longer has are deleted.
import type { VaultClient } from '../adapters/vault.ts';
import type { ConfigureItem } from './configure.ts';

export async function pruneMountRoles(client: VaultClient, mount: string, keep: ReadonlySet<string>, kind: ConfigureItem['kind']): Promise<ConfigureItem[]> {
  const items: ConfigureItem[] = [];
  const listed = await client.get<any>(`${mount}/roles?list=true`, { accept: [404] });
  for (const role of (listed.data?.data?.keys ?? []) as string[]) {
    if (!keep.has(role)) {
      await client.delete(`${mount}/roles/${role}`);
      items.push({ kind, name: role, action: 'deleted' });
    }
  }
  return items;
}
