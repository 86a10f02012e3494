// Can a server-side apply be proven to change nothing, from the object as the API server holds
// it? Then a re-deploy reads (one GET per object, which it does anyway) and sends no PATCH: no
// admission webhook call, no structured-merge work in the API server, the same verdict.
//
// An apply by field manager M of object D onto live object L changes nothing when
//   1. every field D sets holds that value in L already (L may hold more: defaults, other
//      managers' fields), and
//   2. the fields M owns in L (its managedFields entry, operation Apply, same apiVersion) are
//      exactly the fields D sets: nothing M owned would be removed, nothing new is claimed.
// Anything this module cannot read with certainty (a set or index list key, two entries for M, a
// null in D, a list whose elements cannot be paired) answers false: the caller then applies, as
// before. So a wrong "true" needs the API server to hold L's values and M's fields exactly as
// read, which is what the server itself would compare.
import type { KubeObject } from '../plan/objects.ts';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type FieldSet = { [k: string]: FieldSet };

const isObject = (v: unknown): v is Record<string, Json> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** D's values are in L: objects key by key, lists element by element (same length), scalars equal. */
export function holds(desired: Json | undefined, live: Json | undefined): boolean {
  if (desired === null || desired === undefined) return false; // a null removes a field: never a no-op we can prove
  if (Array.isArray(desired)) return Array.isArray(live) && live.length === desired.length && desired.every((d, i) => holds(d, live[i]));
  if (isObject(desired)) return isObject(live) && Object.entries(desired).every(([k, v]) => holds(v, live[k]));
  return desired === live;
}

function canonical(v: Json): string {
  return JSON.stringify(v, (_k, x: Json) => (isObject(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x));
}

/** The fields D sets match M's field set `fs` exactly (fieldsV1: f:<name>, k:<key json>, "."). */
function sameFields(fs: FieldSet, desired: Json, live: Json | undefined): boolean {
  const keys = Object.keys(fs).filter((k) => k !== '.');
  // M owns a map or list whole (atomic: a Deployment's selector, a command): an apply replaces it,
  // so it changes nothing only when the live value is exactly D's.
  if (keys.length === 0 && (Array.isArray(desired) ? desired.length > 0 : isObject(desired) && Object.keys(desired).length > 0)) return canonical(desired) === canonical(live ?? null);
  if (isObject(desired)) {
    if (keys.length !== Object.keys(desired).length) return false;
    return Object.entries(desired).every(([k, v]) => fs[`f:${k}`] !== undefined && sameFields(fs[`f:${k}`]!, v, isObject(live) ? live[k] : undefined));
  }
  if (Array.isArray(desired)) {
    if (!keys.every((k) => k.startsWith('k:')) || keys.length !== desired.length || !Array.isArray(live)) return false;
    // Each keyed element: the live element with exactly that key, and the one desired element it holds.
    const used = new Set<number>();
    for (const k of keys) {
      let key: Record<string, Json>;
      try {
        key = JSON.parse(k.slice(2)) as Record<string, Json>;
      } catch {
        return false;
      }
      const liveEl = live.find((el) => isObject(el) && Object.entries(key).every(([f, v]) => JSON.stringify(el[f]) === JSON.stringify(v)));
      if (liveEl === undefined) return false;
      const i = desired.findIndex((d, j) => !used.has(j) && holds(d, liveEl));
      if (i < 0) return false;
      used.add(i);
      if (!sameFields(fs[k]!, desired[i]!, liveEl)) return false;
    }
    return true;
  }
  return keys.length === 0; // a scalar is a leaf
}

/** M's one Apply entry in L's managedFields (no subresource), or undefined when there is not exactly one. */
function ownEntry(live: any, fieldManager: string): any {
  if (!isObject(live) || !isObject(live.metadata)) return undefined;
  const mine = ((live.metadata.managedFields ?? []) as any[]).filter((e) => e?.manager === fieldManager && !e.subresource);
  return mine.length === 1 && mine[0].operation === 'Apply' && mine[0].fieldsType === 'FieldsV1' && isObject(mine[0].fieldsV1) ? mine[0] : undefined;
}

/** D without what identifies the object (apiVersion, kind, metadata.name and .namespace are not in field sets). */
function appliedBody(desired: KubeObject): Record<string, Json> {
  const { apiVersion: _a, kind: _k, metadata, ...rest } = desired as unknown as { apiVersion: string; kind: string; metadata: Record<string, Json> } & Record<string, Json>;
  const { name: _n, namespace: _ns, ...meta } = metadata;
  return { ...rest, ...(Object.keys(meta).length ? { metadata: meta } : {}) };
}

/** True when applying `desired` as `fieldManager` onto `live` provably changes nothing. */
export function applyIsNoop(desired: KubeObject, live: any, fieldManager: string): boolean {
  if (live?.apiVersion !== desired.apiVersion || live?.kind !== desired.kind) return false;
  const body = appliedBody(desired);
  const mine = ownEntry(live, fieldManager);
  // An object applied bare (a Namespace that only has to exist, made by helm or another tool):
  // the apply owns no field, so the server keeps no entry for it, and sending it again changes nothing.
  if (!mine) return Object.keys(body).length === 0 && !((live.metadata?.managedFields ?? []) as any[]).some((e) => e?.manager === fieldManager);
  if (mine.apiVersion !== desired.apiVersion) return false;
  return holds(body, live as Json) && sameFields(mine.fieldsV1 as FieldSet, body, live as Json);
}

/**
 * After an apply that was sent: did it change the object? The resourceVersion alone cannot say:
 * a controller writing the object's status between the GET and the PATCH (ESO does, each time it
 * syncs an ExternalSecret) moves it too. So also unchanged when M's field set is the same before
 * and after and the object is, but for its status and the API server's bookkeeping
 * (resourceVersion, managedFields; M's entry time moves on applies of atomic lists the server
 * defaults into, with no value changed).
 */
export function applyChangedNothing(desired: KubeObject, before: any, after: any, fieldManager: string): boolean {
  if (!isObject(before) || !isObject(after) || !isObject(before.metadata) || !isObject(after.metadata)) return false;
  if (before.metadata.resourceVersion === after.metadata.resourceVersion) return true;
  const was = ownEntry(before, fieldManager);
  const is = ownEntry(after, fieldManager);
  if (!was || !is || was.apiVersion !== desired.apiVersion || is.apiVersion !== desired.apiVersion || canonical(was.fieldsV1) !== canonical(is.fieldsV1)) return false;
  const content = (o: any): string => {
    const { status: _s, metadata, ...rest } = o;
    const { resourceVersion: _rv, managedFields: _mf, ...meta } = metadata;
    return canonical({ ...rest, metadata: meta });
  };
  return content(before) === content(after);
}
