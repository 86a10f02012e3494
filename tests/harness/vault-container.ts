// Starts the official hashicorp/vault image (the tag the plan pins) through testcontainers as a
// real server, not dev mode: `server` with file storage and a plain-HTTP listener, so init and
// unseal are real. Needs a Docker engine; the callers gate on dockerInfo() first.
import { GenericContainer, Wait } from 'testcontainers';
import { loadConfig, BUNDLED_CONFIG } from '../../scripts/config/load.ts';
import { buildPlan } from '../../scripts/plan/build.ts';

export interface VaultContainer {
  address: string;
  stop(): Promise<void>;
}

/** hashicorp/vault:<tag> from the bundled config's plan (distribution "vault"). */
export function vaultImage(): string {
  // The kind suite's runner (tests/e2e/run.ts) names the locally built image on a machine without a registry.
  if (process.env.VAULTLAB_E2E_VAULT_IMAGE) return process.env.VAULTLAB_E2E_VAULT_IMAGE;
  const { image } = buildPlan(loadConfig({ file: BUNDLED_CONFIG, env: {} })).vault;
  return `${image.repository}:${image.tag}`;
}

const CONFIG_HCL = `storage "file" {
  path = "/vault/file"
}
listener "tcp" {
  address     = "0.0.0.0:8200"
  tls_disable = 1
}
api_addr      = "http://127.0.0.1:8200"
disable_mlock = true
ui            = false
`;

export async function startVaultContainer(): Promise<VaultContainer> {
  // The image's entrypoint runs `vault server -config=/vault/config` for the command `server`.
  const started = await new GenericContainer(vaultImage())
    .withCommand(['server'])
    .withEnvironment({ SKIP_SETCAP: 'true' })
    .withCopyContentToContainer([{ content: CONFIG_HCL, target: '/vault/config/vaultlab.hcl', mode: 0o644 }])
    .withExposedPorts(8200)
    .withWaitStrategy(Wait.forHttp('/v1/sys/seal-status', 8200).forStatusCode(200))
    .withStartupTimeout(180_000)
    .start();
  return {
    address: `http://${started.getHost()}:${started.getMappedPort(8200)}`,
    stop: async () => {
      await started.stop();
    },
  };
}
