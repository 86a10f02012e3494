// HA Raft: followers join the leader through retry_join while sealed, then each must be
// unsealed with the same key shares. Waits for each member to have joined before unsealing it.
import type { VaultClient } from '../adapters/vault.ts';
import { VaultlabError } from '../lib/errors.ts';
import { unsealVault, type UnsealOutcome } from './seal.ts';

export async function unsealFollowers(followers: VaultClient[], keys: string[], timeoutMs = 180_000): Promise<UnsealOutcome[]> {
  const out: UnsealOutcome[] = [];
  for (const f of followers) {
    const deadline = Date.now() + timeoutMs;
    // A follower reports "initialized" once retry_join has fetched the leader's configuration.
    for (;;) {
      const s = await f.sealStatus().catch(() => undefined);
      if (s?.initialized) break;
      if (Date.now() > deadline) {
        throw new VaultlabError(`Raft member ${f.address} has not joined the cluster after ${Math.round(timeoutMs / 1000)} s`, {
          hint: 'Check its retry_join leader addresses and that it trusts the leader\'s certificate (leader_ca_cert_file).',
        });
      }
      await new Promise((r) => setTimeout(r, 500));
    }
    // Unseal submits shares; the join completes on the first successful unseal.
    for (;;) {
      try {
        out.push(await unsealVault(f, keys));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }
  return out;
}

export interface RaftPeer {
  node_id: string;
  address: string;
  leader: boolean;
  voter: boolean;
}

export async function raftPeers(client: VaultClient): Promise<RaftPeer[]> {
  const r = await client.get<any>('sys/storage/raft/configuration');
  return (r.data.data?.config?.servers ?? []) as RaftPeer[];
}
