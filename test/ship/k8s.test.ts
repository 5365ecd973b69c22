// deploy/k8s as a user applies it (`kubectl apply -k deploy/k8s/base`, or the KEDA overlay), read
// and checked against the program: each probe path answers in the program, each role and variable
// is one it knows, the worker's grace outlasts a gateway call, no Secret value is real, and the
// base holds no Secret at all. Then rendered by `kubectl kustomize` (offline) and each rendered
// object checked as the API server and the kubelet would need it.
import { afterAll, describe, expect, test } from "bun:test";
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { loadConfig, ROLES } from "../../src/config";
import { testApi } from "../kit/api";
import { testDatabase } from "../kit/db";
import { freePort, killSpawned, spawnRole } from "../kit/processes";
import { eventually } from "../kit/wait";

const ROOT = join(import.meta.dir, "..", "..");
const K8S = join(ROOT, "deploy", "k8s");
const database = testDatabase(1);
afterAll(async () => {
  await killSpawned();
  await database.close();
}, 30_000);

// biome-ignore lint/suspicious/noExplicitAny: manifests are whatever YAML holds; the tests check the shape
type Manifest = any;

const files = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    entry.isDirectory() ? files(join(dir, entry.name)) : entry.name.endsWith(".yaml") ? [join(dir, entry.name)] : [],
  );
const parsed = new Map<string, Manifest>(
  files(K8S).map((file) => [relative(K8S, file), Bun.YAML.parse(readFileSync(file, "utf8"))]),
);
const manifests = (dir: string): Manifest[] =>
  [...parsed].filter(([name]) => name.startsWith(`${dir}/`) && !name.endsWith("kustomization.yaml")).map(([, m]) => m);
const base = manifests("base");
const keda = manifests("keda");
const example = manifests("overlays/example");
const find = (kind: string, name: string, from = base): Manifest => {
  const found = from.find((m) => m.kind === kind && m.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

const configMap = find("ConfigMap", "payouts");
const secret = find("Secret", "payouts", example);
const api = find("Deployment", "payouts-api");
const worker = find("Deployment", "payouts-worker");
const migrate = find("Job", "payouts-migrate");
const workloads = [api, worker, migrate];
const container = (workload: Manifest) => workload.spec.template.spec.containers[0];

/** Every variable loadConfig reads: it is called with an environment that records each read. */
const KNOWN = new Set<string>();
loadConfig(
  new Proxy({} as Record<string, string | undefined>, {
    get: (_, name) => {
      if (typeof name === "string") KNOWN.add(name);
      return undefined;
    },
  }),
);
// Read by the Bun runtime itself (the image sets it), not by the program.
KNOWN.add("BUN_JSC_forceRAMSize");
KNOWN.add("BUN_JSC_useFTLJIT");

describe("the Kustomize base and the KEDA overlay", () => {
  test("every manifest is listed in its kustomization, and every listed file exists", () => {
    for (const dir of ["base", "keda", "overlays/example"]) {
      const kustomization = parsed.get(`${dir}/kustomization.yaml`);
      const listed = (kustomization.resources as string[]).filter((r) => !r.startsWith(".."));
      const present = [...parsed.keys()]
        .filter((name) => name.startsWith(`${dir}/`) && !name.endsWith("kustomization.yaml"))
        .map((name) => name.slice(dir.length + 1));
      expect(listed.sort()).toEqual(present.sort());
    }
    expect(parsed.get("keda/kustomization.yaml").resources).toContain("../base");
    expect(parsed.get("overlays/example/kustomization.yaml").resources).toContain("../../base");
  });

  test("the base and the KEDA overlay hold no Secret: an apply never replaces the real one with placeholders", () => {
    expect([...base, ...keda].filter((m) => m.kind === "Secret")).toEqual([]);
    expect(example.map((m) => `${m.kind}/${m.metadata.name}`)).toEqual(["Secret/payouts"]);
  });

  test("the base holds what docs/operations.md's Kubernetes section walks through", () => {
    expect(base.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      "ConfigMap/payouts",
      "Deployment/payouts-api",
      "Deployment/payouts-worker",
      "HorizontalPodAutoscaler/payouts-api",
      "Ingress/payouts",
      "Job/payouts-migrate",
      "PodDisruptionBudget/payouts-api",
      "PodDisruptionBudget/payouts-worker",
      "Service/payouts-api",
    ]);
  });

  test("each workload runs the one image in a role the program knows", () => {
    const images = parsed.get("base/kustomization.yaml").images.map((i: { name: string }) => i.name);
    const roles = workloads.map((w) => {
      expect(images).toContain(container(w).image);
      const [arg, ...rest] = container(w).args as string[];
      expect(rest).toEqual([]);
      const role = (arg as string).replace(/^--role=/, "");
      expect(ROLES).toContain(role as (typeof ROLES)[number]);
      return role;
    });
    expect(roles).toEqual(["api", "worker", "migrate"]);
  });

  test("pods run as the image's non-root user, read-only, with no capabilities, requests and limits set", () => {
    for (const workload of workloads) {
      const pod = workload.spec.template.spec;
      expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 65532, runAsGroup: 65532 });
      expect(pod.automountServiceAccountToken).toBe(false);
      // The binary is not PID 1 (which would ignore a SIGTERM sent before its handler exists).
      expect(pod.shareProcessNamespace).toBe(true);
      const c = container(workload);
      expect(c.securityContext).toEqual({
        readOnlyRootFilesystem: true,
        allowPrivilegeEscalation: false,
        capabilities: { drop: ["ALL"] },
      });
      for (const kind of ["requests", "limits"]) {
        expect(Object.keys(c.resources[kind]).sort()).toEqual(["cpu", "memory"]);
      }
    }
    expect(readFileSync(join(ROOT, "Dockerfile"), "utf8")).toContain("USER 65532:65532");
  });

  test("every environment variable set is one the program reads", () => {
    const names = [
      ...Object.keys(configMap.data),
      ...Object.keys(secret.stringData),
      ...workloads.flatMap((w) => (container(w).env ?? []).map((e: { name: string }) => e.name)),
    ];
    expect(names.filter((name) => !KNOWN.has(name))).toEqual([]);
    // And the values are valid: the program would start with them.
    expect(() => loadConfig({ ...configMap.data, ...secret.stringData, WORKER_THREADS: "1" })).not.toThrow();
    for (const w of workloads) {
      expect(container(w).envFrom).toEqual([{ configMapRef: { name: "payouts" } }, { secretRef: { name: "payouts" } }]);
    }
  });

  test("the worker has one thread per requested CPU", () => {
    const threads = container(worker).env.find((e: { name: string }) => e.name === "WORKER_THREADS");
    expect(threads.valueFrom.resourceFieldRef).toEqual({
      containerName: "worker",
      resource: "requests.cpu",
      divisor: "1",
    });
  });

  test("no Secret value is real: placeholders only", () => {
    const { WEBHOOK_SECRET_KEYS: keys, ...urls } = secret.stringData as Record<string, string>;
    // The encryption key is there, named CHANGE_ME, of 32 zero bytes: a placeholder nobody mistakes for a key.
    expect(loadConfig({ WEBHOOK_SECRET_KEYS: keys }).webhookSecretKeys).toEqual([
      { id: "CHANGE_ME", key: Buffer.alloc(32) },
    ]);
    for (const [name, value] of Object.entries(urls)) {
      const url = new URL(value);
      expect({ name, password: url.password }).toEqual({ name, password: "CHANGE_ME" });
      expect(url.hostname.endsWith(".example.internal")).toBe(true);
    }
    expect(secret.data).toBeUndefined();
  });

  test("the worker's grace period outlasts one gateway call; the api's its preStop and drain", () => {
    const config = loadConfig(configMap.data);
    expect(worker.spec.template.spec.terminationGracePeriodSeconds * 1000).toBeGreaterThan(config.taskTimeLimitMs);
    const preStop = container(api).lifecycle.preStop.sleep.seconds;
    expect(api.spec.template.spec.terminationGracePeriodSeconds).toBeGreaterThanOrEqual(preStop + 15);
  });

  test("the api's probes answer in the program on its PORT: live 200, ready 200 on a migrated database", async () => {
    const c = container(api);
    expect(c.ports).toEqual([{ name: "http", containerPort: loadConfig(configMap.data).port }]);
    const app = testApi(database);
    for (const probe of [c.readinessProbe, c.livenessProbe]) {
      expect(probe.httpGet.port).toBe("http");
      const response = await app.request("GET", probe.httpGet.path);
      expect({ path: probe.httpGet.path, status: response.status }).toEqual({ path: probe.httpGet.path, status: 200 });
    }
    expect(c.readinessProbe.httpGet.path).toBe("/health/ready");
  });

  test("the worker's probe answers in a running worker on METRICS_PORT", async () => {
    const c = container(worker);
    expect(c.ports).toEqual([{ name: "metrics", containerPort: loadConfig(configMap.data).metricsPort }]);
    expect(c.livenessProbe.httpGet.port).toBe("metrics");
    const port = freePort();
    spawnRole("worker", { WORKER_THREADS: "1", METRICS_PORT: String(port) });
    const status = await eventually(
      () =>
        fetch(`http://127.0.0.1:${port}${c.livenessProbe.httpGet.path}`).then(
          (r) => r.status === 200 && 200,
          () => false,
        ),
      20_000,
      200,
    );
    expect(status).toBe(200);
  }, 30_000);

  test("the Service, HPA and PodDisruptionBudgets select the pods they mean", () => {
    const labels = (w: Manifest) => w.spec.template.metadata.labels;
    expect(find("Service", "payouts-api").spec.selector).toEqual(labels(api));
    expect(find("Service", "payouts-api").spec.ports[0].targetPort).toBe("http");
    expect(find("PodDisruptionBudget", "payouts-api").spec.selector.matchLabels).toEqual(labels(api));
    expect(find("PodDisruptionBudget", "payouts-worker").spec.selector.matchLabels).toEqual(labels(worker));
    expect(api.spec.selector.matchLabels).toEqual(labels(api));
    expect(worker.spec.selector.matchLabels).toEqual(labels(worker));
    const hpa = find("HorizontalPodAutoscaler", "payouts-api").spec;
    expect(hpa.scaleTargetRef).toEqual({ apiVersion: "apps/v1", kind: "Deployment", name: "payouts-api" });
    expect(hpa.minReplicas).toBeGreaterThanOrEqual(2);
    expect(api.spec.replicas).toBeUndefined();
  });

  test("the Ingress publishes /api and /swagger only, to the api's Service, with TLS", () => {
    const ingress = find("Ingress", "payouts").spec;
    expect(ingress.ingressClassName).toBe("nginx");
    expect(ingress.tls).toHaveLength(1);
    const paths = ingress.rules.flatMap((r: Manifest) => r.http.paths);
    expect(paths.map((p: Manifest) => [p.path, p.pathType]).sort()).toEqual([
      ["/api", "Prefix"],
      ["/swagger", "Prefix"],
    ]);
    for (const p of paths) expect(p.backend.service).toEqual({ name: "payouts-api", port: { name: "http" } });
  });

  test("the KEDA overlay scales the worker Deployment on the depth of the payouts queue", () => {
    const scaled = find("ScaledObject", "payouts-worker", keda).spec;
    expect(scaled.scaleTargetRef).toEqual({ name: "payouts-worker" });
    expect(scaled.triggers).toHaveLength(1);
    expect(scaled.triggers[0]).toMatchObject({
      type: "rabbitmq",
      metadata: { queueName: "payouts", mode: "QueueLength" },
      authenticationRef: { name: "payouts-rabbitmq" },
    });
    const auth = find("TriggerAuthentication", "payouts-rabbitmq", keda).spec;
    expect(auth.secretTargetRef).toEqual([{ parameter: "host", name: "payouts", key: "AMQP_URL" }]);
    expect(Object.keys(secret.stringData)).toContain("AMQP_URL");
    // KEDA owns the replica count: the overlay removes the base's.
    expect(parsed.get("keda/kustomization.yaml").patches[0]).toMatchObject({
      target: { kind: "Deployment", name: "payouts-worker" },
      patch: expect.stringContaining("path: /spec/replicas"),
    });
  });
});

/** Why `kubectl kustomize` cannot run here, or undefined when it can. */
function kubectlRefusal(): string | undefined {
  try {
    const probe = Bun.spawnSync(["kubectl", "version", "--client"], { stdout: "pipe", stderr: "pipe" });
    return probe.exitCode === 0 ? undefined : `kubectl version --client failed: ${probe.stderr.toString().trim()}`;
  } catch {
    return "no kubectl on PATH";
  }
}
const noKubectl = kubectlRefusal();
if (noKubectl) console.warn(`SKIPPED the kubectl kustomize block of test/ship/k8s.test.ts: ${noKubectl}`);

/** `kubectl kustomize <dir>`: what `kubectl apply -k` would send, rendered offline. */
export function render(dir: string): Manifest[] {
  const result = Bun.spawnSync(["kubectl", "kustomize", dir], { stdout: "pipe", stderr: "pipe" });
  if (result.exitCode !== 0) throw new Error(`kubectl kustomize ${dir}: ${result.stderr.toString()}`);
  return result.stdout
    .toString()
    .split(/^---$/m)
    .map((doc) => Bun.YAML.parse(doc))
    .filter(Boolean);
}

/**
 * The mistakes a rendered set must not hold, one line each: what the API server would refuse, what
 * would leave a pod without a Secret or ConfigMap key it reads, what would run it unbounded, as
 * root, writable, unprobed or on a floating image. `outOfBand` names the objects (`Kind/name`) that
 * are created apart from the set: the Secret, which the base must not hold.
 */
export function problems(objects: Manifest[], outOfBand: string[] = []): string[] {
  const found: string[] = [];
  const named = (kind: string, name: string) => objects.find((o) => o.kind === kind && o.metadata?.name === name);
  const keysOf = (o: Manifest) => new Set(Object.keys({ ...(o?.data ?? {}), ...(o?.stringData ?? {}) }));
  for (const o of objects) {
    const id = `${o.kind}/${o.metadata?.name}`;
    if (typeof o.apiVersion !== "string" || typeof o.kind !== "string" || !o.metadata?.name) {
      found.push(`${id}: apiVersion, kind and metadata.name are required`);
    }
    if (o.metadata?.labels?.["app.kubernetes.io/part-of"] !== "payouts") found.push(`${id}: no part-of label`);
    const pod =
      o.kind === "Deployment" ? o.spec?.template?.spec : o.kind === "Job" ? o.spec?.template?.spec : undefined;
    if (!pod) continue;
    const selector = o.spec.selector?.matchLabels ?? {};
    for (const [k, v] of Object.entries(selector)) {
      if (o.spec.template.metadata?.labels?.[k] !== v)
        found.push(`${id}: selector ${k} does not match the pod's labels`);
    }
    if (pod.securityContext?.runAsNonRoot !== true) found.push(`${id}: runAsNonRoot is not true`);
    for (const c of pod.containers ?? []) {
      const at = `${id} container ${c.name}`;
      if (!/^[^:@]+(:[\w][\w.-]*|@sha256:[0-9a-f]{64})$/.test(c.image ?? "") || /:latest$/.test(c.image)) {
        found.push(`${at}: image ${c.image} has no pinned tag`);
      }
      for (const kind of ["requests", "limits"]) {
        for (const resource of ["cpu", "memory"]) {
          if (c.resources?.[kind]?.[resource] === undefined) found.push(`${at}: no ${kind}.${resource}`);
        }
      }
      if (c.securityContext?.readOnlyRootFilesystem !== true) found.push(`${at}: root filesystem is writable`);
      if (c.securityContext?.allowPrivilegeEscalation !== false) found.push(`${at}: privilege escalation allowed`);
      if (o.kind === "Deployment" && !c.livenessProbe) found.push(`${at}: no livenessProbe`);
      const ports = new Set((c.ports ?? []).flatMap((p: Manifest) => [p.name, p.containerPort]));
      for (const probe of [c.livenessProbe, c.readinessProbe].filter(Boolean)) {
        if (!ports.has(probe.httpGet?.port))
          found.push(`${at}: a probe names port ${probe.httpGet?.port}, not one of its own`);
      }
      for (const from of c.envFrom ?? []) {
        const [kind, ref] = from.secretRef ? ["Secret", from.secretRef] : ["ConfigMap", from.configMapRef];
        const present = named(kind, ref.name) || outOfBand.includes(`${kind}/${ref.name}`);
        if (!present && !ref.optional) found.push(`${at}: envFrom ${kind} ${ref.name} is not in the set`);
      }
      for (const e of c.env ?? []) {
        const ref = e.valueFrom?.secretKeyRef ?? e.valueFrom?.configMapKeyRef;
        const kind = e.valueFrom?.secretKeyRef ? "Secret" : "ConfigMap";
        if (ref && !keysOf(named(kind, ref.name)).has(ref.key))
          found.push(`${at}: ${kind} ${ref.name} has no key ${ref.key}`);
        if (e.valueFrom?.resourceFieldRef && e.valueFrom.resourceFieldRef.containerName !== c.name) {
          found.push(`${at}: ${e.name} reads another container's resources`);
        }
      }
    }
  }
  for (const o of objects.filter((x) => x.kind === "Service" || x.kind === "PodDisruptionBudget")) {
    const selector = o.kind === "Service" ? o.spec.selector : o.spec.selector.matchLabels;
    const selects = objects.some(
      (w) =>
        w.kind === "Deployment" &&
        Object.entries(selector).every(([k, v]) => w.spec.template.metadata.labels?.[k] === v),
    );
    if (!selects) found.push(`${o.kind}/${o.metadata.name}: selects no pod`);
  }
  for (const auth of objects.filter((x) => x.kind === "TriggerAuthentication")) {
    for (const ref of auth.spec.secretTargetRef ?? []) {
      const secret = named("Secret", ref.name);
      if (secret && !keysOf(secret).has(ref.key))
        found.push(`TriggerAuthentication: Secret ${ref.name} has no key ${ref.key}`);
    }
  }
  return found;
}

describe.skipIf(noKubectl !== undefined)("the manifests as `kubectl kustomize` renders them", () => {
  test("base, KEDA and example render, and no rendered object holds a mistake", () => {
    for (const [dir, outOfBand] of [
      ["base", ["Secret/payouts"]],
      ["keda", ["Secret/payouts"]],
      ["overlays/example", []],
    ] as const) {
      const objects = render(join(K8S, dir));
      expect({ dir, problems: problems(objects, [...outOfBand]) }).toEqual({ dir, problems: [] });
      // What `kubectl apply -k` sends: the image as pinned in the base, never the bare name.
      for (const o of objects.filter((x) => x.kind === "Deployment" || x.kind === "Job")) {
        expect(o.spec.template.spec.containers[0].image).toBe("registry.example.com/payouts:1.0.0");
      }
    }
  });

  test("only the example overlay renders a Secret, and it holds every key the workloads and KEDA read", () => {
    for (const dir of ["base", "keda"]) expect(render(join(K8S, dir)).filter((o) => o.kind === "Secret")).toEqual([]);
    const kedaAuth = render(join(K8S, "keda")).filter((o) => o.kind === "TriggerAuthentication");
    const objects = [...render(join(K8S, "overlays/example")), ...kedaAuth];
    const rendered = objects.find((o) => o.kind === "Secret");
    expect(Object.keys(rendered.stringData).sort()).toEqual(["AMQP_URL", "DATABASE_URL", "WEBHOOK_SECRET_KEYS"]);
    expect(problems(objects)).toEqual([]);
  });

  test("the checks catch planted mistakes", () => {
    const objects = render(join(K8S, "overlays/example"));
    const api = objects.find((o) => o.kind === "Deployment" && o.metadata.name === "payouts-api");
    const planted = structuredClone(objects);
    const plantedApi = planted.find((o: Manifest) => o.metadata.name === "payouts-api" && o.kind === "Deployment");
    const c = plantedApi.spec.template.spec.containers[0];
    delete c.resources.limits.memory;
    c.securityContext.readOnlyRootFilesystem = false;
    c.image = "registry.example.com/payouts";
    c.readinessProbe.httpGet.port = "htpp";
    c.env = [{ name: "X", valueFrom: { secretKeyRef: { name: "payouts", key: "AMQP_URI" } } }];
    plantedApi.spec.template.spec.securityContext.runAsNonRoot = false;
    expect(problems(planted).sort()).toEqual(
      [
        "Deployment/payouts-api container api: no limits.memory",
        "Deployment/payouts-api container api: root filesystem is writable",
        "Deployment/payouts-api container api: image registry.example.com/payouts has no pinned tag",
        "Deployment/payouts-api container api: a probe names port htpp, not one of its own",
        "Deployment/payouts-api container api: Secret payouts has no key AMQP_URI",
        "Deployment/payouts-api: runAsNonRoot is not true",
      ].sort(),
    );
    expect(api.spec.template.spec.containers[0].resources.limits.memory).toBeDefined();
    // Without the Secret (the base alone), an envFrom names a Secret the set lacks: expected there,
    // since it is created out of band, and the reason the example overlay is what is checked whole.
    expect(problems(render(join(K8S, "base")).filter((o) => o.kind !== "ConfigMap"))).toContain(
      "Deployment/payouts-api container api: envFrom ConfigMap payouts is not in the set",
    );
  });
});
