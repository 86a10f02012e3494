// The Raft membership as the active node sees it (needs a token allowed to read it). Read by
// `status`; the HA bring-up itself (join, unseal, cluster formed) is scripts/production/ha.ts.
import type { VaultClient } from '../adapters/vault.ts';

export interface RaftPeer {
  node_id: string;
  address: string;
  leader: boolean;
  voter: boolean;
}

export async function raftPeers(client: VaultClient): Promise<RaftPeer[]> {
  const r = await client.get<any>('sys/storage/raft/configuration');
  return (r.data?.data?.config?.servers ?? []) as RaftPeer[];
}
