// Plan -> Kubernetes manifests, each built and validated with kubernetes-models.
// Pure apart from reading the bundled sample templates in stacks/samples.
import { POSTGRES_IMAGE, SAMPLES_IMAGE } from './images.ts';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { NamespacePlan, Plan, SamplePlan } from './types.ts';
import { PROJECT_ROOT } from '../config/load.ts';
import { VaultlabError } from '../lib/errors.ts';
import { checked, model, validated } from './validate.ts';
export { checked } from './validate.ts';
import { VAULT_RBAC_NAME, vaultClusterRules, vaultNamespaceRules } from './kubernetes-secrets.ts';
import { deliveryOf, appsOf } from '../deliveries/index.ts';
import type { AppPlan, Delivery, DeliveryName, PodTemplate } from '../deliveries/types.ts';

export { MANAGED_BY, TOKEN_REVIEWER, type KubeObject } from './objects.ts';
import { MANAGED_BY, type KubeObject } from './objects.ts';

/**
 * Rendered and validated once per plan, namespace plan and sample (by identity: a caller that
 * builds a namespace plan of its own gets its own rendering): a deploy asks for the same
 * manifests in several steps (images, deliveries, samples), and building them through their
 * model classes with validation is the CPU of a warm re-deploy. Each caller gets its own copy
 * (callers may edit what they get before applying it).
 */
const rendered = new WeakMap<Plan, WeakMap<NamespacePlan, Map<SamplePlan | 'namespace', KubeObject[]>>>();
function once(plan: Plan, ns: NamespacePlan, what: SamplePlan | 'namespace', render: () => KubeObject[]): KubeObject[] {
  let byNs = rendered.get(plan);
  if (!byNs) rendered.set(plan, (byNs = new WeakMap()));
  let byWhat = byNs.get(ns);
  if (!byWhat) byNs.set(ns, (byWhat = new Map()));
  let objects = byWhat.get(what);
  if (!objects) byWhat.set(what, (objects = render()));
  return structuredClone(objects);
}

/** The namespace, each of its deliveries' objects, Vault's RBAC there for [[kubernetes_roles]], then its sample workloads. */
export function namespaceManifests(plan: Plan, ns: NamespacePlan): KubeObject[] {
  return once(plan, ns, 'namespace', () => renderNamespace(plan, ns));
}

function renderNamespace(plan: Plan, ns: NamespacePlan): KubeObject[] {
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const out: KubeObject[] = [checked(model.Namespace({ metadata: { name: ns.name, labels: { ...labels, 'vaultlab.dev/vault-client': 'true' } } }), `Namespace ${ns.name}`)];
  for (const name of ns.deliveries) {
    const d = deliveryOf(name) as Delivery<DeliveryName>;
    out.push(...d.manifests(plan, ns, appsOf(plan.apps, name).filter((a) => a.namespace === ns.name) as never[]).map((o) => validated(o)));
  }
  out.push(...kubernetesSecretsRbac(plan, ns.name));
  for (const sample of ns.samples) out.push(...renderSample(plan, ns, sample));
  return out;
}

/** A sample's template, parsed once per process (fill() builds new objects: the parsed tree is never changed). */
const templateCache = new Map<string, unknown[]>();
function sampleTemplate(kind: string): unknown[] {
  let docs = templateCache.get(kind);
  if (docs === undefined) {
    docs = parseAllDocuments(readFileSync(resolve(PROJECT_ROOT, 'stacks', 'samples', `${kind}.yaml`), 'utf8')).map((d) => d.toJS());
    templateCache.set(kind, docs);
  }
  return docs;
}

/** Fill ${NAME} placeholders in every string of a parsed YAML tree (never in the raw text, so values cannot break the YAML). */
function fill(node: unknown, vars: Record<string, string>): unknown {
  if (typeof node === 'string') {
    const whole = /^\$\{([A-Z_]+)\}$/.exec(node);
    if (whole?.[1] && /^[0-9]+$/.test(vars[whole[1]] ?? '')) return Number(vars[whole[1]]);
    return node.replace(/\$\{([A-Z_]+)\}/g, (m, name: string) => vars[name] ?? m);
  }
  if (Array.isArray(node)) return node.map((n) => fill(n, vars));
  if (node && typeof node === 'object') return Object.fromEntries(Object.entries(node).map(([k, v]) => [k, fill(v, vars)]));
  return node;
}

/** The dashboard's table of every enabled app and how its secrets arrive (names only, no value; no quote, for its shell). */
export function deliveryRows(plan: Plan): string {
  const what = (a: AppPlan): string => {
    switch (a.delivery) {
      case 'eso':
        return `Secret ${a.externalSecrets.map((e) => e.target).join(', ')} (ExternalSecret)`;
      case 'injector':
        return `files ${a.files.map((f) => f.file).join(', ')} (Vault Agent sidecar, no Secret)`;
      case 'vso':
        return `Secret ${a.secrets.map((s) => s.target).join(', ')} (VaultStaticSecret${a.secrets.some((s) => s.rolloutRestart) ? ', rollout restart' : ''})`;
    }
  };
  return plan.apps.map((a) => `<tr><td>${a.name}</td><td>${a.namespace}</td><td>${a.delivery}</td><td>${what(a)}</td></tr>`).join('');
}

export function sampleManifests(plan: Plan, ns: NamespacePlan, sample: SamplePlan): KubeObject[] {
  return once(plan, ns, sample, () => renderSample(plan, ns, sample));
}

function renderSample(plan: Plan, ns: NamespacePlan, sample: SamplePlan): KubeObject[] {
  const app: AppPlan | undefined = plan.apps.find((a) => a.name === sample.app);
  if (!app) throw new VaultlabError(`internal: sample ${sample.app} has no app in the plan`);
  const delivery = deliveryOf(app.delivery) as Delivery<DeliveryName>;
  const keys = delivery.sampleKeys?.(app as never) ?? [];
  const envNames = keys.filter((k) => /^[A-Za-z_][A-Za-z0-9_]*$/.test(k));
  // db-client: its database_role file; the dashboard: every db-client app's status page.
  const dbFile = app.delivery === 'injector' ? app.files.find((f) => f.database) : undefined;
  const dbClients = plan.apps.filter((a) => a.sample === 'db-client').map((a) => `${a.name}|${a.name}.${a.namespace}.svc:8080`);
  const vars: Record<string, string> = {
    DB_FILE: dbFile?.file ?? '',
    DB_TABLE: dbFile?.database?.table ?? '',
    DB_CLIENTS: dbClients.join(' '),
    APP: sample.app,
    NAMESPACE: ns.name,
    NODE_PORT: String(plan.cluster.nodePorts.dashboard),
    ENV_NAMES: envNames.length ? envNames.join('|') : '__none__',
    ENV_CHECK: envNames.length ? envNames.map((n) => `test -n "$${n}"`).join(' && ') : 'true',
    DELIVERY_ROWS: deliveryRows(plan),
  };
  const docs = sampleTemplate(sample.kind).map((d) => fill(d, vars) as KubeObject).filter(Boolean);
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name, 'vaultlab.dev/app': sample.app };
  return docs.map((doc) => {
    doc.metadata.labels = { ...doc.metadata.labels, ...labels };
    switch (doc.kind) {
      case 'Deployment': {
        const template = (doc as any).spec.template as PodTemplate;
        // The sample image from the plan ([images] samples, or the mirror): air-gapped machines.
        for (const c of [...(template.spec.initContainers ?? []), ...template.spec.containers]) {
          if (c.image === SAMPLES_IMAGE) c.image = plan.images.samples;
          // The db-client sample runs psql from the sample Postgres's image ([images] postgres).
          else if (c.image === POSTGRES_IMAGE) c.image = plan.images.postgres;
        }
        // How the app's delivery hands it its secrets: env or Secret volumes (ESO), annotations for the injector's agent...
        delivery.consume(plan, app as never, template);
        return checked(model.Deployment(doc as any), `sample Deployment ${ns.name}/${doc.metadata.name}`);
      }
      case 'Service':
      case 'Secret':
        return validated(doc, `sample ${doc.kind} ${ns.name}/${doc.metadata.name}`);
      default:
        throw new VaultlabError(`stacks/samples/${sample.kind}.yaml: unsupported kind ${doc.kind}`);
    }
  });
}

/**
 * production: only ESO (and namespaces labelled as Vault clients) may reach Vault's API port.
 * vaultlab itself reaches Vault through a port-forward, which enters the pod's own network
 * namespace and is not subject to NetworkPolicy; production exposes no NodePort.
 */
export function vaultNetworkPolicy(plan: Plan): KubeObject {
  return checked(
    model.NetworkPolicy({
      metadata: { name: 'vault-allow-clients', namespace: plan.vault.namespace, labels: { ...MANAGED_BY } },
      spec: {
        podSelector: { matchLabels: { 'app.kubernetes.io/name': plan.vault.chart.chart } },
        policyTypes: ['Ingress'],
        ingress: [
          {
            // ESO, and namespaces labelled as Vault clients, on the API port.
            from: [
              { namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': plan.eso.namespace } } },
              // VSO's controller logs in and reads for its apps from its own namespace.
              ...(plan.apps.some((a) => a.delivery === 'vso') ? [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': plan.vso.namespace } } }] : []),
              { namespaceSelector: { matchLabels: { 'vaultlab.dev/vault-client': 'true' } } },
            ],
            ports: [{ protocol: 'TCP', port: 8200 }],
          },
          {
            // Raft and request forwarding between Vault pods.
            from: [{ podSelector: { matchLabels: { 'app.kubernetes.io/name': plan.vault.chart.chart } } }],
            ports: [
              { protocol: 'TCP', port: 8200 },
              { protocol: 'TCP', port: 8201 },
            ],
          },
        ],
      },
    }),
    'NetworkPolicy vault-allow-clients',
  );
}

/**
 * [[kubernetes_roles]]: what Vault's ServiceAccount may do in one app namespace for the secrets
 * engine, a Role and its RoleBinding; nothing when no role allows the namespace.
 */
export function kubernetesSecretsRbac(plan: Plan, ns: string): KubeObject[] {
  const ks = plan.vault.kubernetesSecrets;
  const rules = ks ? vaultNamespaceRules(ks, ns) : [];
  if (!ks || rules.length === 0) return [];
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const subject = { kind: 'ServiceAccount', name: ks.identity.serviceAccount, namespace: ks.identity.namespace };
  return [
    checked(model.Role({ metadata: { name: VAULT_RBAC_NAME, namespace: ns, labels }, rules }), `Role ${ns}/${VAULT_RBAC_NAME}`),
    checked(
      model.RoleBinding({
        metadata: { name: VAULT_RBAC_NAME, namespace: ns, labels },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: VAULT_RBAC_NAME },
        subjects: [subject],
      }),
      `RoleBinding ${ns}/${VAULT_RBAC_NAME}`,
    ),
  ];
}

/**
 * Cluster-scoped objects of the secrets engine: an external Vault's own ServiceAccount, and (demo
 * only: generated ClusterRoles, cluster-wide bindings) a ClusterRole and its binding.
 */
export function kubernetesSecretsClusterManifests(plan: Plan): KubeObject[] {
  const ks = plan.vault.kubernetesSecrets;
  if (!ks) return [];
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const out: KubeObject[] = [];
  if (plan.vault.external) {
    out.push(checked(model.ServiceAccount({ metadata: { name: ks.identity.serviceAccount, namespace: ks.identity.namespace, labels } }), `ServiceAccount ${ks.identity.namespace}/${ks.identity.serviceAccount}`));
  }
  const rules = vaultClusterRules(ks);
  if (rules.length) {
    out.push(
      checked(model.ClusterRole({ metadata: { name: VAULT_RBAC_NAME, labels }, rules }), `ClusterRole ${VAULT_RBAC_NAME}`),
      checked(
        model.ClusterRoleBinding({
          metadata: { name: VAULT_RBAC_NAME, labels },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: VAULT_RBAC_NAME },
          subjects: [{ kind: 'ServiceAccount', name: ks.identity.serviceAccount, namespace: ks.identity.namespace }],
        }),
        `ClusterRoleBinding ${VAULT_RBAC_NAME}`,
      ),
    );
  }
  return out;
}

export function allManifests(plan: Plan): KubeObject[] {
  return plan.namespaces.flatMap((ns) => namespaceManifests(plan, ns));
}
