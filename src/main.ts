// First, on its own: the signal and uncaught-error handlers are installed before any other module loads.
import "./roles/lifecycle";
import { type Config, ConfigError, loadConfig, ROLES, type Role } from "./config";
import { containerArgs, roleIsHealthy } from "./http/healthcheck";
import { createLogger, type Logger } from "./lib/log";
import { allRole } from "./roles/all";
import { apiRole } from "./roles/api";
import { keysRole } from "./roles/keys";
import { useLogger } from "./roles/lifecycle";
import { migrateRole } from "./roles/migrate";
import { workerRole } from "./roles/worker";

/** `--role=api` or `--role api`; `all` when absent. */
const isRoleFlag = (arg: string) => arg === "--role" || arg.startsWith("--role=");

function parseRole(argv: string[]): Role {
  const index = argv.findIndex(isRoleFlag);
  if (index === -1) return "all";
  const arg = argv[index] as string;
  const value = arg.includes("=") ? arg.slice("--role=".length) : argv[index + 1];
  if (!ROLES.includes(value as Role)) {
    throw new ConfigError(`--role must be one of ${ROLES.join(", ")}, got "${value ?? ""}"`);
  }
  return value as Role;
}

const roles: Record<Role, (config: Config, log: Logger) => Promise<void>> = {
  migrate: migrateRole,
  api: apiRole,
  worker: workerRole,
  all: allRole,
  keys: keysRole,
};

async function main() {
  if (Bun.argv.includes("--healthcheck")) {
    // Its own --role, else the container's (the image's one HEALTHCHECK serves every role).
    const args = Bun.argv.slice(2);
    const role = parseRole(args.some(isRoleFlag) ? args : containerArgs());
    // migrate serves nothing to ask: it is healthy while it runs, and its exit code is its result.
    process.exit(role === "migrate" || (await roleIsHealthy(role, loadConfig())) ? 0 : 1);
  }
  const role = parseRole(Bun.argv.slice(2));
  const config = loadConfig();
  const log = createLogger(config.logLevel, config.logFormat, { role });
  useLogger(log);
  await roles[role](config, log);
}

try {
  await main();
} catch (err) {
  if (err instanceof ConfigError) {
    process.stderr.write(`payouts: ${err.message}\n`);
    process.exit(2);
  }
  // Anything else is logged as one line with its stack by the uncaught-exception handler.
  throw err;
}
