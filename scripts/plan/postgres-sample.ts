// The sample Postgres of [[databases]] (where = "sample"): a one-replica StatefulSet on a
// PersistentVolumeClaim, its Service, and an init step (the image's /docker-entrypoint-initdb.d)
// that creates each app's group role and a table, before Vault issues the first lease. The
// editor's original password comes from a Secret deploy creates; it is never rendered. Pure.
import type { Plan } from './types.ts';
import { checked, model } from './validate.ts';
import { MANAGED_BY, type KubeObject } from './objects.ts';
import { SAMPLE_POSTGRES, sampleInitSql } from './databases.ts';

export const POSTGRES_INIT_CONFIGMAP = 'postgres-init';
const DATA = '/var/lib/postgresql/data';

export function samplePostgresManifests(plan: Plan): KubeObject[] {
  const s = plan.vault.databases?.sample;
  if (!s) return [];
  const labels = { ...MANAGED_BY, 'vaultlab.dev/cluster': plan.cluster.name };
  const selector = { 'app.kubernetes.io/name': s.name, 'app.kubernetes.io/part-of': 'vaultlab-databases' };
  const ns = s.namespace;
  return [
    checked(model.Namespace({ metadata: { name: ns, labels } }), `Namespace ${ns}`),
    checked(
      model.ConfigMap({ metadata: { name: POSTGRES_INIT_CONFIGMAP, namespace: ns, labels }, data: { '10-vaultlab-group-roles.sql': sampleInitSql(s) } }),
      `ConfigMap ${ns}/${POSTGRES_INIT_CONFIGMAP}`,
    ),
    checked(
      model.Service({
        metadata: { name: s.name, namespace: ns, labels: { ...labels, ...selector } },
        spec: { selector, ports: [{ name: 'postgres', port: SAMPLE_POSTGRES.port, targetPort: 'postgres' }] },
      }),
      `Service ${ns}/${s.name}`,
    ),
    checked(
      model.StatefulSet({
        metadata: { name: s.name, namespace: ns, labels: { ...labels, ...selector } },
        spec: {
          serviceName: s.name,
          replicas: 1,
          selector: { matchLabels: selector },
          template: {
            metadata: { labels: { ...labels, ...selector } },
            spec: {
              containers: [
                {
                  name: 'postgres',
                  image: s.image,
                  // The entrypoint creates the editor (POSTGRES_USER) and the database on an empty
                  // volume, then runs the init SQL; on a restart the volume keeps Vault's rotated password.
                  env: [
                    { name: 'POSTGRES_USER', value: s.editorUsername },
                    { name: 'POSTGRES_DB', value: s.database },
                    { name: 'POSTGRES_PASSWORD', valueFrom: { secretKeyRef: { name: s.passwordSecret, key: 'password' } } },
                    { name: 'PGDATA', value: `${DATA}/pgdata` },
                  ],
                  ports: [{ name: 'postgres', containerPort: SAMPLE_POSTGRES.port }],
                  readinessProbe: { exec: { command: ['pg_isready', '-h', '127.0.0.1', '-U', s.editorUsername, '-d', s.database] }, periodSeconds: 5 },
                  // 10m: a 2-core kind node also schedules production's three Vault pods.
                  resources: { requests: { cpu: '10m', memory: '64Mi' }, limits: { memory: '256Mi' } },
                  volumeMounts: [
                    { name: 'data', mountPath: DATA },
                    { name: 'init', mountPath: '/docker-entrypoint-initdb.d', readOnly: true },
                  ],
                },
              ],
              volumes: [{ name: 'init', configMap: { name: POSTGRES_INIT_CONFIGMAP } }],
            },
          },
          // Written as the API server stores it, with the defaults it fills in (apiVersion, kind,
          // volumeMode, status.phase): the list is atomic for server-side apply, so only an equal
          // value lets a re-deploy prove the apply changes nothing and send no PATCH.
          volumeClaimTemplates: [
            {
              apiVersion: 'v1',
              kind: 'PersistentVolumeClaim',
              metadata: { name: 'data', labels },
              spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, volumeMode: 'Filesystem' },
              status: { phase: 'Pending' },
            },
          ],
        },
      }),
      `StatefulSet ${ns}/${s.name}`,
    ),
  ];
}
