// Production HA Raft: the sequence that turns N Vault servers (the StatefulSet's pods, or any
// servers whose storage "raft" has retry_join stanzas naming each other) into one cluster.
//
//   1. The first member is initialized and unsealed (vaultUp: init 5/3, unseal, configure...).
//   2. Every other member joins through retry_join while still sealed; with Shamir keys the
//      join only completes once that member is unsealed with the same key shares. So for each
//      member: wait until it reports "initialized" (it has reached the leader and fetched the
//      join challenge), submit the threshold of shares, and wait while it receives the
//      cluster's data and unseals by itself (more shares would not help).
//   3. Wait until the cluster has formed: every member is active or a standby that knows the
//      active node, the Raft configuration lists every member as a voter (autopilot promotes a
//      new member after its stabilization time) and one leader, and all name the same leader.
//
// Every step is safe to repeat: an unsealed member is left alone, a formed cluster only read;
// members that were in the cluster before (pods restarted, all of them at once too) are
// unsealed without waiting for a leader, since a leader needs a quorum of unsealed members.
// Deploy (haUp) and `vault up|unseal --member` call it for the members; tests run it against
// local `bao server`s.
import { VaultApiError, type VaultClient } from '../adapters/vault.ts';
import type { Plan } from '../plan/types.ts';
import type { StateDir } from '../lib/state.ts';
import { VaultlabError } from '../lib/errors.ts';
import { unsealVault, waitForActive, type UnsealOutcome } from '../vault/seal.ts';
import { readInit } from '../vault/keys.ts';
import { vaultUp, type UpOptions, type UpReport } from '../vault/up.ts';
import { raftPeers, type RaftPeer } from '../vault/ha.ts';

export { raftPeers, type RaftPeer };

export interface MemberReport {
  address: string;
  unseal: UnsealOutcome['action'];
  sharesUsed: number;
  /** How long the member took to join (reach "initialized") after we started waiting. */
  joinMs: number;
}

export interface HaReport {
  members: MemberReport[];
  /** The Raft configuration once formed; empty when no token could read it (see `checkedBy`). */
  peers: RaftPeer[];
  /** The active node's API address, as every member reports it. */
  leaderAddress: string;
  /** What proved the cluster formed: the Raft configuration (token) or sys/leader of every member. */
  checkedBy: 'raft-configuration' | 'sys-leader';
  ms: number;
}

export interface HaOptions {
  /** Plaintext unseal key shares (at least the threshold). */
  keys: string[];
  /** For the whole sequence. Default 5 minutes: pods may still be pulling images. */
  timeoutMs?: number;
  /** Expected voters; default every member. */
  voters?: number;
  /** Progress lines for the deploy step. */
  report?: (line: string) => void;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The key shares HA unseal can use: the ones given (--keys-file, --stdin), else the state dir's
 * init result unless its shares are PGP-encrypted (only their owners can decrypt them).
 */
export function plaintextKeys(state: StateDir, given?: string[]): string[] {
  if (given?.length) return given;
  const init = readInit(state);
  if (!init) {
    throw new VaultlabError(`no unseal keys: ${state.file('vault-init.json')} is missing and none were given`, {
      hint: 'Give the key shares: --keys-file FILE or --stdin (the threshold number of them).',
    });
  }
  if (init.pgp) {
    throw new VaultlabError('the stored key shares are PGP-encrypted, so vaultlab cannot unseal the HA members with them', {
      hint: 'Decrypt the threshold number of shares (gpg --decrypt) and give them with --keys-file FILE or --stdin.',
    });
  }
  return init.keys_base64;
}

const retriable = (err: unknown): boolean => {
  const status = (err as { status?: number }).status;
  // No answer (restarting) or a 5xx while it sets up; a 4xx (wrong share) is final.
  return err instanceof VaultApiError && (status === undefined || status >= 500) && !/sealed/i.test(err.message);
};

/**
 * Submits shares to a member until it unseals. A member still joining through retry_join
 * answers the threshold-th share with "sealed" and no error: the shares decrypted the leader's
 * join challenge, and the member unseals by itself once it has the leader's keyring (its Raft
 * snapshot). So it is not given more shares; it is waited for. A share that does not fit is
 * an error from Vault and ends the wait at once.
 */
export async function unsealMember(member: VaultClient, keys: string[], deadline: number): Promise<{ action: UnsealOutcome['action']; sharesUsed: number }> {
  const status = await member.sealStatus();
  if (!status.sealed) return { action: 'already-unsealed', sharesUsed: 0 };
  if (keys.length < status.t) {
    throw new VaultlabError(`HA member ${member.address} needs ${status.t} key shares to unseal, ${keys.length} given`, {
      hint: 'Give more shares: --keys-file FILE or --stdin.',
    });
  }
  // A half-finished attempt by someone else would mix shares.
  if (status.progress > 0) await member.put('sys/unseal', { reset: true }, { anonymous: true, retry: false });
  let used = 0;
  for (const key of keys.slice(0, status.t)) {
    const r = await member.put<{ sealed: boolean }>('sys/unseal', { key }, { anonymous: true, retry: false }).catch((err: unknown) => {
      if (err instanceof VaultApiError && err.status !== undefined && err.status < 500) {
        throw new VaultlabError(`HA member ${member.address} refused key share ${used + 1}: ${err.vaultErrors.join('; ') || `HTTP ${err.status}`}`, {
          cause: err,
          hint: 'These shares do not belong to the Vault this member belongs to: it has data of its own (a volume from an earlier install?). Delete that member\'s data volume (PVC) so it joins afresh, or give its own keys.',
        });
      }
      throw err;
    });
    used++;
    if (!r.data.sealed) return { action: 'unsealed', sharesUsed: used };
  }
  let last = await member.sealStatus();
  while (last.sealed) {
    if (Date.now() > deadline) {
      throw new VaultlabError(`HA member ${member.address} took ${used} key share(s) but is still sealed: its Raft join has not completed`, {
        hint: "It answered the leader's challenge but has not received the cluster's data: check that the members reach each other on the cluster port (8201) and the member's log.",
      });
    }
    await sleep(250);
    last = await member.sealStatus().catch((err: unknown) => {
      if (retriable(err)) return last;
      throw err;
    });
  }
  return { action: 'unsealed', sharesUsed: used };
}

/** Waits until `member` has reached the leader through retry_join, then unseals it. */
export async function joinAndUnseal(member: VaultClient, keys: string[], deadline: number): Promise<MemberReport> {
  const t0 = Date.now();
  let last = 'no answer';
  for (;;) {
    const s = await member.sealStatus().catch((err: Error) => {
      last = err.message;
      return undefined;
    });
    // "initialized" on an uninitialized follower means retry_join has fetched the leader's
    // join challenge; unsealing it with the leader's shares answers the challenge.
    if (s?.initialized) break;
    if (s) last = 'not initialized: it has not reached the leader yet';
    if (Date.now() > deadline) {
      throw new VaultlabError(`HA member ${member.address} has not joined the Raft cluster (last seen: ${last})`, {
        hint:
          'Check its retry_join stanzas (leader_api_addr must reach the first member; leader_ca_cert_file must hold the CA that signed ' +
          "the leader's certificate; leader_tls_servername must be one of its names), then its log (kubectl -n vault logs vault-1).",
      });
    }
    await sleep(250);
  }
  const joinMs = Date.now() - t0;
  for (;;) {
    try {
      const u = await unsealMember(member, keys, deadline);
      return { address: member.address, unseal: u.action, sharesUsed: u.sharesUsed, joinMs };
    } catch (err) {
      if (!retriable(err) || Date.now() > deadline) throw err;
      await sleep(500);
    }
  }
}

/** Every member names the same active node, exactly one of them is that node. */
async function leaderAgreement(members: VaultClient[]): Promise<{ leaderAddress: string } | string> {
  const answers = await Promise.all(members.map((m) => m.leader({ retry: false }).catch((err: Error) => err)));
  const failed = answers.findIndex((a) => a instanceof Error);
  if (failed >= 0) return `${members[failed]!.address}: ${(answers[failed] as Error).message}`;
  const leaders = answers as Exclude<(typeof answers)[number], Error>[];
  const addresses = new Set(leaders.map((l) => l.leader_address ?? ''));
  const selves = leaders.filter((l) => l.is_self).length;
  if (addresses.size !== 1 || addresses.has('') || selves !== 1) {
    return `members disagree on the active node: ${leaders.map((l, i) => `${members[i]!.address} -> ${l.leader_address || 'none'}${l.is_self ? ' (self)' : ''}`).join(', ')}`;
  }
  return { leaderAddress: [...addresses][0]! };
}

/**
 * Waits for the formed cluster: every member agrees on the active node and, when `active` holds
 * a token that may read it, the Raft configuration lists `voters` voters and one leader.
 */
export async function waitForRaftCluster(active: VaultClient, members: VaultClient[], voters: number, deadline: number): Promise<Pick<HaReport, 'peers' | 'leaderAddress' | 'checkedBy'>> {
  let last = '';
  for (;;) {
    const agreed = await leaderAgreement(members);
    if (typeof agreed === 'string') last = agreed;
    else if (!active.hasToken()) return { peers: [], leaderAddress: agreed.leaderAddress, checkedBy: 'sys-leader' };
    else {
      const peers = await raftPeers(active).catch((err: Error) => err);
      if (peers instanceof Error) last = `reading the Raft configuration: ${peers.message}`;
      else {
        const v = peers.filter((p) => p.voter).length;
        const l = peers.filter((p) => p.leader).length;
        if (v >= voters && l === 1) return { peers, leaderAddress: agreed.leaderAddress, checkedBy: 'raft-configuration' };
        last = `Raft lists ${peers.length} member(s), ${v} voter(s), ${l} leader(s); waiting for ${voters} voters (autopilot promotes a new member after its stabilization time)`;
      }
    }
    if (Date.now() > deadline) {
      throw new VaultlabError(`the HA Raft cluster has not formed: ${last}`, {
        hint: 'Run `vaultlab status` to see each member; a member that stays a non-voter usually cannot reach the others on the cluster port (8201): check the NetworkPolicy and its log.',
      });
    }
    await sleep(500);
  }
}

/**
 * Unseals the first member (initialized by vaultUp) if sealed, then every other member, one at
 * a time, each once it has joined, then waits for the cluster to form. `active` is the first
 * member; with a token it also proves the voters through the Raft configuration. After a
 * restart of every member this is also what brings the whole cluster back.
 */
export async function formHaCluster(active: VaultClient, followers: VaultClient[], opts: HaOptions): Promise<HaReport> {
  const t0 = Date.now();
  const deadline = t0 + (opts.timeoutMs ?? 300_000);
  const first = await active.sealStatus();
  if (!first.initialized) {
    throw new VaultlabError(`the first HA member ${active.address} is not initialized`, { hint: 'Initialize it first: vaultlab vault init (deploy does this).' });
  }
  const members: MemberReport[] = [];
  if (first.sealed) {
    const u = await unsealVault(active, opts.keys);
    members.push({ address: active.address, unseal: u.action, sharesUsed: u.sharesUsed, joinMs: 0 });
  } else {
    members.push({ address: active.address, unseal: 'already-unsealed', sharesUsed: 0, joinMs: 0 });
  }
  const remaining = () => Math.max(1000, deadline - Date.now());
  let leaderUp = false;
  for (const f of followers) {
    // A member new to the cluster joins through an active leader, so one must exist first. A
    // member that has joined before (a restart, or every pod restarted at once) is unsealed
    // right away: a cluster whose members are all sealed elects a leader only once a quorum
    // of them is unsealed.
    const s = await f.sealStatus().catch(() => undefined);
    if (!s?.initialized && !leaderUp) {
      await waitForActive(active, remaining());
      leaderUp = true;
    }
    opts.report?.(s?.initialized && !s.sealed ? `HA: ${f.address} is unsealed` : `HA: waiting for ${f.address} to join, then unsealing it`);
    members.push(await joinAndUnseal(f, opts.keys, deadline));
  }
  for (const m of [active, ...followers]) await waitForActive(m, remaining());
  opts.report?.(`HA: waiting for ${opts.voters ?? followers.length + 1} Raft voters`);
  const formed = await waitForRaftCluster(active, [active, ...followers], opts.voters ?? followers.length + 1, deadline);
  return { members, ...formed, ms: Date.now() - t0 };
}

export interface HaUpReport {
  up: UpReport;
  ha: HaReport;
}

/**
 * The whole production bring-up of an HA Vault, first deploy or re-run:
 * - new cluster: vaultUp on the first member (init 5/3, unseal, configure, setup token with
 *   root revoked, seed), then every other member joined and unsealed;
 * - existing cluster found sealed (pods restarted, all of them at once too): every member is
 *   unsealed first, since vaultUp waits for an active node and there is none until a quorum
 *   is unsealed; then vaultUp (configure and seed, normally without a write).
 */
export async function haUp(active: VaultClient, followers: VaultClient[], plan: Plan, state: StateDir, opts: UpOptions & Omit<HaOptions, 'keys'>): Promise<HaUpReport> {
  const haOpts = (): HaOptions => ({
    keys: plaintextKeys(state, opts.keys),
    ...(opts.timeoutMs !== undefined ? { timeoutMs: opts.timeoutMs } : {}),
    ...(opts.voters !== undefined ? { voters: opts.voters } : {}),
    ...(opts.report ? { report: opts.report } : {}),
  });
  const s = await active.sealStatus();
  const restarted = s.initialized && s.sealed ? await formHaCluster(active, followers, haOpts()) : undefined;
  const up = await vaultUp(active, plan, state, opts);
  // Read-only when formed; with the token vaultUp left on the client it also proves the voters.
  const ha = await formHaCluster(active, followers, haOpts());
  // What each member went through: unsealed by the restart pass, or (the first) by vaultUp.
  const first = up.unseal[0]!;
  const members = restarted?.members ?? [{ address: first.address, unseal: first.action, sharesUsed: first.sharesUsed, joinMs: 0 }, ...ha.members.slice(1)];
  return { up, ha: { ...ha, members } };
}
