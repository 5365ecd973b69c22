// The shape of compose.yaml and the Dockerfile: the files read, and checked for what
// `docker compose up --scale worker=3` and the image rely on. Where a Docker engine with Compose v2
// runs (started on this machine by the shared containers setup script), the last block runs the stack for real.
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, posix } from "node:path";
import { loadConfig } from "../../src/config";
import { TEST_SECRET_KEYS } from "../kit/api";
import { createAndAwaitCompleted } from "../kit/processes";
import { eventually } from "../kit/wait";

const root = join(import.meta.dir, "..", "..");
const read = (name: string) => readFileSync(join(root, name), "utf8");

type Service = {
  image?: string;
  restart?: string;
  read_only?: boolean;
  tmpfs?: string[];
  cap_drop?: string[];
  cap_add?: string[];
  security_opt?: string[];
  env_file?: { path: string; required: boolean }[];
  logging?: { driver: string; options: Record<string, string> };
  deploy?: { resources?: { limits?: { cpus?: string; memory?: string } } };
  build?: unknown;
  pull_policy?: string;
  hostname?: string;
  init?: boolean;
  volumes?: string[];
  command?: string[];
  environment?: Record<string, string>;
  depends_on?: Record<string, { condition: string }>;
  healthcheck?: { test?: string[]; disable?: boolean };
  ports?: string[];
  container_name?: string;
  stop_grace_period?: string;
};
const compose = Bun.YAML.parse(read("compose.yaml")) as {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
};
const services = compose.services;
const service = (name: string) => services[name] as Service;

/** Dockerfile instructions by stage: continuation lines joined, comments dropped. */
function dockerfileStages(text: string) {
  const stages: { from: string; name: string | undefined; instructions: { op: string; args: string }[] }[] = [];
  const lines = text.replace(/\\\n/g, " ").split("\n");
  for (const line of lines.map((l) => l.trim()).filter((l) => l && !l.startsWith("#"))) {
    const [op = "", ...rest] = line.split(/\s+/);
    const args = rest.join(" ");
    if (op.toUpperCase() === "FROM") {
      const [from = "", , name] = args.split(/\s+/);
      stages.push({ from, name, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

const seconds = (duration: string) => {
  const match = /^(\d+)(s|m)$/.exec(duration);
  if (!match) throw new Error(`unexpected duration ${duration}`);
  return Number(match[1]) * (match[2] === "m" ? 60 : 1);
};

describe("compose.yaml", () => {
  test("runs PostgreSQL, RabbitMQ, migrate, api and worker", () => {
    expect(Object.keys(services).sort()).toEqual(["api", "migrate", "postgres", "rabbitmq", "worker"]);
    expect(service("postgres").image).toMatch(/^postgres:16\b/);
    expect(service("rabbitmq").image).toMatch(/^rabbitmq:3\.13/);
  });

  test("PostgreSQL and RabbitMQ have healthchecks the others wait for", () => {
    expect(service("postgres").healthcheck?.test).toContain("pg_isready");
    // Healthy only once the AMQP listener accepts connections: `ping` passes while the node boots.
    expect(service("rabbitmq").healthcheck?.test).toEqual([
      "CMD",
      "rabbitmq-diagnostics",
      "-q",
      "check_port_connectivity",
    ]);
  });

  test("every long-running service restarts with the Docker daemon; migrate is a one-shot", () => {
    for (const name of ["postgres", "rabbitmq", "api", "worker"]) {
      expect({ name, restart: service(name).restart }).toEqual({ name, restart: "unless-stopped" });
    }
    expect(service("migrate").restart).toBe("no");
  });

  test("every container's log is rotated and its memory and CPUs are limited", () => {
    for (const name of Object.keys(services)) {
      expect({ name, logging: service(name).logging }).toEqual({
        name,
        logging: { driver: "json-file", options: { "max-size": "10m", "max-file": "3" } },
      });
      const limits = service(name).deploy?.resources?.limits ?? {};
      expect({ name, cpus: Number(limits.cpus) > 0, memory: /^\d+[mg]$/.test(limits.memory ?? "") }).toEqual({
        name,
        cpus: true,
        memory: true,
      });
    }
  });

  test("the program's containers are read-only, with no capability and no privilege to gain", () => {
    for (const role of ["migrate", "api", "worker"]) {
      expect(service(role)).toMatchObject({
        read_only: true,
        cap_drop: ["ALL"],
        security_opt: ["no-new-privileges:true"],
      });
      expect(service(role).cap_add).toBeUndefined();
      expect(service(role).tmpfs).toBeUndefined();
    }
    // PostgreSQL and RabbitMQ start as root only to hand their data to their own user: those
    // capabilities alone. PostgreSQL writes nowhere but its volume and two tmpfs.
    for (const name of ["postgres", "rabbitmq"]) {
      expect(service(name)).toMatchObject({ cap_drop: ["ALL"], security_opt: ["no-new-privileges:true"] });
      expect(service(name).cap_add?.sort()).toEqual(["CHOWN", "DAC_OVERRIDE", "FOWNER", "SETGID", "SETUID"]);
    }
    expect(service("postgres")).toMatchObject({ read_only: true, tmpfs: ["/var/run/postgresql", "/tmp"] });
  });

  test("the program's containers read the project's .env when there is one; the URLs stay compose's", () => {
    for (const role of ["migrate", "api", "worker"]) {
      expect(service(role).env_file).toEqual([{ path: ".env", required: false }]);
    }
  });

  test("the webhook secrets' key comes from the shell or .env, and compose refuses to start without it", () => {
    for (const role of ["api", "worker"]) {
      expect(service(role).environment?.WEBHOOK_SECRET_KEYS).toMatch(
        /^\$\{WEBHOOK_SECRET_KEYS:\?.*\.env\.example\)\}$/,
      );
    }
    expect(read(".env.example")).toMatch(/^WEBHOOK_SECRET_KEYS=$/m);
  });

  test("migrate, api and worker are the one image, built once under the documented tag, each started in its role", () => {
    expect(service("api").image).toBe("payouts:local");
    expect(read("docs/operations.md").includes("docker build -t payouts:local .")).toBe(true);
    // One service builds it; the others run that image and never pull or build one of their own.
    expect(Object.keys(services).filter((name) => service(name).build !== undefined)).toEqual(["migrate"]);
    expect(service("migrate").build).toBe(".");
    // payouts:local is in no registry: built, never pulled (the default would try a pull first).
    expect(service("migrate").pull_policy).toBe("build");
    for (const role of ["api", "worker"]) expect(service(role).pull_policy).toBe("never");
    for (const role of ["migrate", "api", "worker"]) {
      expect(service(role).image).toBe(service("api").image as string);
      expect(service(role).command).toEqual([`--role=${role}`]);
      // An init as PID 1 forwards signals and reaps children.
      expect(service(role).init).toBe(true);
      const env = service(role).environment ?? {};
      expect(new URL(env.DATABASE_URL as string).host).toBe("postgres:5432");
      expect(new URL(env.AMQP_URL as string).host).toBe("rabbitmq:5672");
    }
  });

  test("migrate waits for a healthy PostgreSQL; api and worker for migrate's success and a healthy RabbitMQ", () => {
    expect(service("migrate").depends_on).toEqual({ postgres: { condition: "service_healthy" } });
    for (const role of ["api", "worker"]) {
      expect(service(role).depends_on).toEqual({
        migrate: { condition: "service_completed_successfully" },
        rabbitmq: { condition: "service_healthy" },
      });
    }
  });

  test("only the api publishes a port, 8000", () => {
    const published = Object.entries(services).filter(([, s]) => s.ports !== undefined);
    expect(published.map(([name]) => name)).toEqual(["api"]);
    expect(service("api").ports).toHaveLength(1);
    expect(service("api").ports?.[0]).toMatch(/:8000$/);
  });

  test("the worker scales (no container_name, no host port) and has time to finish a payout on stop", () => {
    const worker = service("worker");
    expect(worker.container_name).toBeUndefined();
    expect(worker.ports).toBeUndefined();
    expect(seconds(worker.stop_grace_period as string) * 1000).toBeGreaterThan(loadConfig({}).taskTimeLimitMs);
  });

  test("the image's healthcheck serves the api and the worker (each its own port); the one-shot migrate has none", () => {
    expect(service("migrate").healthcheck).toEqual({ disable: true });
    expect(service("worker").healthcheck).toBeUndefined();
    expect(service("api").healthcheck).toBeUndefined();
  });

  test("PostgreSQL's healthcheck asks over TCP, not the socket its first-start server listens on alone", () => {
    const check = service("postgres").healthcheck?.test ?? [];
    expect(check.slice(0, 2)).toEqual(["CMD", "pg_isready"]);
    expect(check[check.indexOf("-h") + 1]).toBe("127.0.0.1");
  });

  test("RabbitMQ keeps its node name and its data across down and up: a fixed hostname and a named volume", () => {
    expect(service("rabbitmq").hostname).toBe("rabbitmq");
    expect(service("rabbitmq").volumes).toEqual(["rabbitmq:/var/lib/rabbitmq"]);
    expect(Object.keys(compose.volumes)).toContain("rabbitmq");
  });

  test("WORKER_THREADS and DB_POOL_SIZE are set, and PostgreSQL's max_connections holds the api, migrate and 6 workers", () => {
    // WEBHOOK_SECRET_KEYS is compose's to fill in (from the shell or .env): a key stands in for it.
    const settings = (role: string) => ({ ...service(role).environment, WEBHOOK_SECRET_KEYS: TEST_SECRET_KEYS });
    const env = service("worker").environment ?? {};
    const config = loadConfig(settings("worker"));
    expect(env.WORKER_THREADS).toBeDefined();
    const command = service("postgres").command ?? [];
    const maxConnections = Number(
      command.find((arg) => arg.startsWith("max_connections="))?.slice("max_connections=".length),
    );
    // Every pool has one more connection for its availability probe (src/db/availability.ts); a
    // worker has a pool per thread, one of 2 for its relay and key purge, and one of 4 for webhook
    // deliveries; migrate has one.
    const worker = config.workerThreads * (config.dbPoolSize + 1) + 2 + 1 + 4 + 1;
    const api = loadConfig(settings("api")).dbPoolSize + 1;
    const needed = api + 1 + 6 * worker;
    // PostgreSQL keeps 3 connections (superuser_reserved_connections) for a superuser.
    expect(maxConnections - 3).toBeGreaterThanOrEqual(needed);
    expect(read("compose.yaml").includes("up to 6 workers")).toBe(true);
  });
});

describe("Dockerfile", () => {
  const stages = dockerfileStages(read("Dockerfile"));
  const [build, runtime] = stages;
  const ops = (stage: typeof build, op: string) =>
    (stage?.instructions ?? []).filter((i) => i.op === op).map((i) => i.args);

  test("builds with the Bun of package.json from the lockfile, then runs on a slim image", () => {
    const bunVersion = JSON.parse(read("package.json")).packageManager.split("@")[1];
    expect(stages).toHaveLength(2);
    expect(build?.from).toBe(`oven/bun:${bunVersion}`);
    expect(build?.name).toBe("build");
    expect(ops(build, "RUN")).toEqual([expect.stringContaining("bun install --frozen-lockfile"), "bun run build"]);
    expect(runtime?.from).not.toContain("oven/bun");
  });

  test("ships the binary with drizzle/ beside it", () => {
    const workdir = ops(runtime, "WORKDIR").at(-1) as string;
    const copies = ops(runtime, "COPY").map((args) => {
      const parts = args.split(/\s+/);
      return { from: parts[0], source: parts[1], target: posix.resolve(workdir, parts[2] as string) };
    });
    expect(copies).toEqual([
      { from: "--from=build", source: "/src/dist/payouts", target: "/app/payouts" },
      { from: "--from=build", source: "/src/dist/drizzle", target: "/app/drizzle" },
    ]);
  });

  test("/app is root's: COPY makes it before WORKDIR could (BuildKit's WORKDIR makes it the USER's)", () => {
    const instructions = runtime?.instructions ?? [];
    const firstCopy = instructions.findIndex((i) => i.op === "COPY");
    const workdir = instructions.findIndex((i) => i.op === "WORKDIR");
    expect(firstCopy).toBeGreaterThanOrEqual(0);
    expect(workdir).toBeGreaterThan(firstCopy);
    expect(ops(runtime, "COPY").every((args) => !args.includes("--chown") && !args.includes("--chmod"))).toBe(true);
  });

  test("runs as a non-root user, the binary as entrypoint, the api role by default", () => {
    const user = ops(runtime, "USER").at(-1) ?? "root";
    expect(user.split(":")[0]).not.toMatch(/^(root|0)$/);
    expect(JSON.parse(ops(runtime, "ENTRYPOINT")[0] as string)).toEqual(["/app/payouts"]);
    expect(JSON.parse(ops(runtime, "CMD")[0] as string)).toEqual(["--role=api"]);
  });

  test("has a HEALTHCHECK that needs no curl: the binary's --healthcheck", () => {
    const [healthcheck] = ops(runtime, "HEALTHCHECK");
    expect(healthcheck).toBeDefined();
    const command = JSON.parse((healthcheck as string).slice((healthcheck as string).indexOf("CMD") + 3));
    expect(command).toEqual(["/app/payouts", "--healthcheck"]);
  });

  test("has no `# syntax` line: building needs no registry", () => {
    expect(read("Dockerfile")).not.toMatch(/^#\s*syntax\s*=/im);
  });

  test("copies patches/ before installing: package.json's patchedDependencies need it", () => {
    const patched = Object.keys(JSON.parse(read("package.json")).patchedDependencies ?? {});
    expect(patched.length).toBeGreaterThan(0);
    const instructions = build?.instructions ?? [];
    const copyPatches = instructions.findIndex((i) => i.op === "COPY" && i.args.split(/\s+/)[0] === "patches");
    const install = instructions.findIndex((i) => i.op === "RUN" && i.args.includes("bun install"));
    expect(copyPatches).toBeGreaterThanOrEqual(0);
    expect(copyPatches).toBeLessThan(install);
  });

  test(".dockerignore keeps local installs, builds, data and secrets out of the build context", () => {
    const patterns = read(".dockerignore")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith("#"));
    expect(patterns[0]).toBe("*");
    const allowed = patterns.filter((p) => p.startsWith("!")).map((p) => p.slice(1).replace(/\/$/, ""));
    expect(allowed.sort()).toEqual([
      "bun.lock",
      "bunfig.toml",
      "drizzle",
      "package.json",
      "patches",
      "src",
      "tsconfig.json",
    ]);
  });
});

/** Why this machine cannot run the stack, or undefined when a Docker engine with Compose v2 answers. */
function engineRefusal(): string | undefined {
  const run = (args: string[]) => {
    try {
      return Bun.spawnSync(["docker", ...args], { stdout: "pipe", stderr: "pipe", timeout: 20_000 });
    } catch {
      return undefined;
    }
  };
  if (run(["info", "--format", "{{.ServerVersion}}"])?.exitCode !== 0)
    return "no Docker engine answers (`docker info`)";
  if (run(["compose", "version"])?.exitCode !== 0) return "no Compose v2 (`docker compose version`)";
  return undefined;
}
const noEngine = engineRefusal();
if (noEngine) console.warn(`SKIPPED the real-engine block of test/ship/compose.test.ts: ${noEngine}`);

describe.skipIf(noEngine !== undefined)("compose.yaml on the Docker engine", () => {
  // A project of its own, its api on a port the engine picks: it runs beside any other stack.
  const project = `payouts-test-${process.pid}`;
  const dir = mkdtempSync(join(tmpdir(), "payouts-compose-"));
  const override = join(dir, "override.yaml");
  // The worker on METRICS_PORT=0: `up --wait` then needs its HEALTHCHECK to find the port.
  writeFileSync(
    override,
    `services:\n  api:\n    ports: !override ["127.0.0.1::8000"]\n  worker:\n    environment:\n      METRICS_PORT: "0"\n`,
  );
  /** `docker compose` on the project, with no variable of this test's environment (DATABASE_URL...). */
  const compose = (args: string[], timeoutMs = 60_000) => {
    const result = Bun.spawnSync(
      ["docker", "compose", "-p", project, "-f", join(root, "compose.yaml"), "-f", override, ...args],
      {
        cwd: root,
        env: { PATH: process.env.PATH ?? "", HOME: process.env.HOME ?? "", WEBHOOK_SECRET_KEYS: TEST_SECRET_KEYS },
        stdout: "pipe",
        stderr: "pipe",
        timeout: timeoutMs,
      },
    );
    return { exitCode: result.exitCode, stdout: result.stdout.toString(), stderr: result.stderr.toString() };
  };
  const containerId = (name: string) => compose(["ps", "-q", name]).stdout.trim();
  const inspect = (name: string) =>
    JSON.parse(Bun.spawnSync(["docker", "inspect", containerId(name)], { stdout: "pipe" }).stdout.toString())[0];
  let api = "";

  beforeAll(() => {
    // Built from the cache in seconds; the first build on a machine takes a few minutes.
    const up = compose(["up", "-d", "--build", "--wait", "--wait-timeout", "240"], 300_000);
    if (up.exitCode !== 0) throw new Error(`docker compose up failed: ${up.stderr}`);
    api = `http://${compose(["port", "api", "8000"]).stdout.trim()}`;
  }, 310_000);

  afterAll(() => {
    compose(["down", "-v", "--timeout", "10"], 120_000);
    rmSync(dir, { recursive: true, force: true });
  }, 130_000);

  test("`docker compose config` validates the file", () => {
    const config = compose(["config", "-q"]);
    expect({ exitCode: config.exitCode, stderr: config.stderr }).toEqual({ exitCode: 0, stderr: "" });
  });

  test("every service is up and healthy, with the compose file's restart policy, logging and hardening", () => {
    for (const name of ["postgres", "rabbitmq", "api", "worker"]) {
      const { State, HostConfig } = inspect(name);
      expect({ name, health: State.Health?.Status, restart: HostConfig.RestartPolicy.Name }).toEqual({
        name,
        health: "healthy",
        restart: "unless-stopped",
      });
      expect(HostConfig.LogConfig).toEqual({ Type: "json-file", Config: { "max-file": "3", "max-size": "10m" } });
      expect(HostConfig.CapDrop).toEqual(["ALL"]);
      expect(HostConfig.SecurityOpt).toEqual(["no-new-privileges:true"]);
      expect(HostConfig.Memory).toBeGreaterThan(0);
    }
    for (const name of ["postgres", "api", "worker"]) expect(inspect(name).HostConfig.ReadonlyRootfs).toBe(true);
    expect(inspect("worker").Config.Env).toContain("METRICS_PORT=0");
  });

  test("a payout created through the api is COMPLETED; after PostgreSQL and RabbitMQ die, both come back and the next one is too", async () => {
    // The first key, as compose.yaml documents it: the keys role in a one-off container.
    const made = compose([
      "run",
      "--rm",
      "--no-deps",
      "api",
      "--role=keys",
      "create",
      "--name",
      "compose test",
      "--scopes",
      "payouts:read,payouts:write",
    ]);
    expect({ exitCode: made.exitCode, stderr: made.exitCode === 0 ? "" : made.stderr }).toEqual({
      exitCode: 0,
      stderr: "",
    });
    const { secret: key } = JSON.parse(made.stdout) as { secret: string };
    expect((await fetch(`${api}/api/payouts/`)).status).toBe(401);
    const body = { amount: "10.00", currency: "EUR", recipient_details: "compose" };
    expect(await createAndAwaitCompleted(api, body, 30_000, key)).toMatchObject({ status: "COMPLETED" });
    // Killed from the host, as a crash does (a `docker kill` or `stop` counts as meant and is not restarted).
    const started = (name: string) => inspect(name).State.StartedAt as string;
    const before = { postgres: started("postgres"), rabbitmq: started("rabbitmq") };
    for (const name of ["postgres", "rabbitmq"] as const) process.kill(inspect(name).State.Pid, "SIGKILL");
    for (const name of ["postgres", "rabbitmq"] as const) {
      await eventually(
        async () => started(name) !== before[name] && inspect(name).State.Health?.Status === "healthy",
        120_000,
        1000,
      );
    }
    expect(await createAndAwaitCompleted(api, { ...body, amount: "10.01" }, 60_000, key)).toMatchObject({
      status: "COMPLETED",
    });
  }, 240_000);
});
