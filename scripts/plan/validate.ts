// Rendered objects, validated through their kubernetes-models classes and returned as plain
// objects. Deliveries render plain objects (their modules load no model classes, so `status`
// and `seed` stay light); every rendered object passes through here before it is used.
import { Namespace } from 'kubernetes-models/v1/Namespace';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Secret } from 'kubernetes-models/v1/Secret';
import { Service } from 'kubernetes-models/v1/Service';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { ExternalSecret } from '@kubernetes-models/external-secrets/external-secrets.io/v1/ExternalSecret';
import { SecretStore } from '@kubernetes-models/external-secrets/external-secrets.io/v1/SecretStore';
import type { KubeObject } from './objects.ts';
import { VaultlabError } from '../lib/errors.ts';

interface Model {
  validate(): void;
  toJSON(): unknown;
}

/** "<apiVersion>/<kind>" -> its model class. Kinds without one (VSO's CRDs) are used as rendered. */
const MODELS: Record<string, new (data: any) => Model> = {
  'v1/Namespace': Namespace,
  'v1/ServiceAccount': ServiceAccount,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'external-secrets.io/v1/ExternalSecret': ExternalSecret,
  'external-secrets.io/v1/SecretStore': SecretStore,
};

/** Validated through its kubernetes-models class, returned as a plain object. */
export function checked<T extends Model>(model: T, what: string): KubeObject {
  try {
    model.validate();
  } catch (err) {
    throw new VaultlabError(`rendered ${what} is not valid: ${(err as Error).message}`, { hint: 'This is a vaultlab bug or a sample template edited by hand; check stacks/samples.' });
  }
  return JSON.parse(JSON.stringify(model.toJSON())) as KubeObject;
}

/** A plain rendered object, validated by the class of its apiVersion and kind (when there is one). */
export function validated(o: KubeObject, what = `${o.kind} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`): KubeObject {
  const model = MODELS[`${o.apiVersion}/${o.kind}`];
  return model ? checked(new model(o), what) : (JSON.parse(JSON.stringify(o)) as KubeObject);
}
