// deploy/k8s as a user applies it (`kubectl apply -k deploy/k8s/base`, or the KEDA overlay), read
// and checked against the program: each probe path answers in the program, each role and variable
// is one it knows, the worker's grace outlasts a gateway call, no Secret value is real.
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
const find = (kind: string, name: string, from = base): Manifest => {
  const found = from.find((m) => m.kind === kind && m.metadata?.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};

const configMap = find("ConfigMap", "payouts");
const secret = find("Secret", "payouts");
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
    for (const dir of ["base", "keda"]) {
      const kustomization = parsed.get(`${dir}/kustomization.yaml`);
      const listed = (kustomization.resources as string[]).filter((r) => !r.startsWith(".."));
      const present = [...parsed.keys()]
        .filter((name) => name.startsWith(`${dir}/`) && !name.endsWith("kustomization.yaml"))
        .map((name) => name.slice(dir.length + 1));
      expect(listed.sort()).toEqual(present.sort());
    }
    expect(parsed.get("keda/kustomization.yaml").resources).toContain("../base");
  });

  test("the base holds what the README's Deployment section walks through", () => {
    expect(base.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual([
      "ConfigMap/payouts",
      "Deployment/payouts-api",
      "Deployment/payouts-worker",
      "HorizontalPodAutoscaler/payouts-api",
      "Ingress/payouts",
      "Job/payouts-migrate",
      "PodDisruptionBudget/payouts-api",
      "PodDisruptionBudget/payouts-worker",
      "Secret/payouts",
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
    for (const [name, value] of Object.entries(secret.stringData as Record<string, string>)) {
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
