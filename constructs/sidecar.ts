/**
 * Container specs for running `phase-bridge agent` next to a workload, as plain objects to pass to your own
 * resources (a Kubernetes Deployment through the kubernetes provider, an ECS task definition, ...). Nothing here
 * creates a resource.
 */

export interface AgentSidecarProps {
  /** App name the agent serves. */
  readonly app: string;
  /** Environment name the agent serves. */
  readonly environment: string;
  /**
   * The Phase host the agent reads from.
   * @default the agent's own default (Phase Cloud) unless `PHASE_HOST` is set in the container
   */
  readonly host?: string;
  /** Container image of the agent. @default 'phase-bridge-agent:latest' (examples/agent/Dockerfile) */
  readonly image?: string;
  /** Secret path to serve. @default every path */
  readonly path?: string;
  /** Poll interval against real Phase. @default '60s' */
  readonly refresh?: string;
  /** How long to serve last known values during an outage. @default '6h' */
  readonly maxStale?: string;
  /** Loopback port of the agent. @default 8787 */
  readonly port?: number;
  /** Directory the token is mounted in (Kubernetes) or read from. @default '/var/run/secrets/phase' */
  readonly tokenDir?: string;
  /**
   * Where the shared in-memory volume is mounted in both containers.
   * @default '/run/phase-agent'
   */
  readonly sharedDir?: string;
  /** Kubernetes: the Secret holding the service token. @default 'phase-service-token' */
  readonly tokenSecretName?: string;
  /** Kubernetes: the key of the token in that Secret. @default 'token' */
  readonly tokenSecretKey?: string;
  /** Extra agent flags. @default none */
  readonly extraArgs?: string[];
}

/**
 * Resource sizes from the measured figures in docs/performance.md: about 70 MiB resident with 1,000 secrets in the
 * image's runtime profile, so 80 MiB requested and 128 MiB as the limit.
 */
export const AGENT_RESOURCES = { cpu: '20m', memoryRequest: '80Mi', memoryLimit: '128Mi' } as const;

export interface AgentSidecar {
  /** Kubernetes native sidecar (>= 1.29): put `initContainer` in `initContainers`, add `volumes` to the pod. */
  readonly kubernetes: {
    readonly initContainer: Record<string, unknown>;
    readonly volumes: Array<Record<string, unknown>>;
    /** Mount for the workload's container, to read the client token. */
    readonly workloadVolumeMount: Record<string, unknown>;
    /** Environment for the workload's container: where the agent is and where its client token is. */
    readonly workloadEnv: Array<{ name: string; value: string }>;
  };
  /** An ECS container definition (JSON shape of `containerDefinitions[]`); the token file comes from your volume. */
  readonly ecs: Record<string, unknown>;
}

/** The agent as a sidecar: a Kubernetes native sidecar and an ECS container definition. */
export function agentSidecar(props: AgentSidecarProps): AgentSidecar {
  const port = props.port ?? 8787;
  const sharedDir = props.sharedDir ?? '/run/phase-agent';
  // Kubernetes creates an emptyDir world-writable (0777, or 2777 with fsGroup), which the agent refuses as its data
  // directory; it creates and owns a subdirectory instead (docs/agent.md, "What the agent trusts on disk").
  const dataDir = `${sharedDir}/agent`;
  const tokenDir = props.tokenDir ?? '/var/run/secrets/phase';
  const tokenKey = props.tokenSecretKey ?? 'token';
  const image = props.image ?? 'phase-bridge-agent:latest';
  const args = [
    'agent',
    `--token-file=${tokenDir}/${tokenKey}`,
    `--data-dir=${dataDir}`,
    `--app=${props.app}`,
    `--env=${props.environment}`,
    `--port=${port}`,
    `--refresh=${props.refresh ?? '60s'}`,
    `--max-stale=${props.maxStale ?? '6h'}`,
    ...(props.path ? [`--path=${props.path}`] : []),
    ...(props.extraArgs ?? []),
  ];
  const env = props.host ? [{ name: 'PHASE_HOST', value: props.host }] : [];
  // The agent listens on loopback only, so probes exec inside the container.
  const probe = (path: string) => [
    'node',
    'bin/phase-bridge.js',
    'agent-probe',
    '--url',
    `http://127.0.0.1:${port}`,
    '--path',
    path,
    '--data-dir',
    dataDir,
  ];
  return {
    kubernetes: {
      initContainer: {
        name: 'phase-agent',
        image,
        restartPolicy: 'Always',
        args,
        env,
        readinessProbe: { exec: { command: probe('/readyz') }, periodSeconds: 5, failureThreshold: 2 },
        livenessProbe: { exec: { command: probe('/healthz') }, periodSeconds: 20 },
        startupProbe: { exec: { command: probe('/readyz') }, periodSeconds: 1, failureThreshold: 60 },
        resources: {
          requests: { cpu: AGENT_RESOURCES.cpu, memory: AGENT_RESOURCES.memoryRequest },
          limits: { memory: AGENT_RESOURCES.memoryLimit },
        },
        securityContext: {
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          capabilities: { drop: ['ALL'] },
        },
        volumeMounts: [
          { name: 'phase-token', mountPath: tokenDir, readOnly: true },
          { name: 'phase-agent', mountPath: sharedDir },
        ],
      },
      volumes: [
        {
          name: 'phase-token',
          secret: {
            secretName: props.tokenSecretName ?? 'phase-service-token',
            defaultMode: 0o440,
            items: [{ key: tokenKey, path: tokenKey }],
          },
        },
        { name: 'phase-agent', emptyDir: { medium: 'Memory' } },
      ],
      workloadVolumeMount: { name: 'phase-agent', mountPath: sharedDir, readOnly: true },
      workloadEnv: [
        { name: 'PHASE_AGENT_URL', value: `http://127.0.0.1:${port}` },
        { name: 'PHASE_AGENT_TOKEN_FILE', value: `${dataDir}/client-token` },
      ],
    },
    ecs: {
      name: 'phase-agent',
      image,
      essential: true,
      command: args,
      environment: env,
      memoryReservation: 80,
      memory: 128,
      cpu: 32,
      readonlyRootFilesystem: true,
      healthCheck: {
        command: ['CMD', ...probe('/readyz')],
        interval: 10,
        timeout: 3,
        retries: 3,
        startPeriod: 10,
      },
    },
  };
}
