import { parseArgs } from "node:util";
import type { Db } from "../db/client";
import type { FieldError } from "../errors";
import { NotFound, ValidationFailed } from "../errors";
import { systemClock } from "../lib/clock";
import { decodeCursor, PAGE_LIMIT_MAX } from "../lib/lists";
import type { Logger } from "../lib/log";
import { isUuid } from "../lib/uuid";
import { BOOTSTRAP, SCOPES } from "./model";
import { keyService } from "./service";
import { validateCreateKey } from "./validation";

const KEYS_USAGE = `usage: --role=keys create --name NAME --scopes SCOPE[,SCOPE...] [--expires-at RFC3339]
       --role=keys list
       --role=keys revoke ID
scopes: ${SCOPES.join(", ")}`;

class UsageError extends Error {}

/** The arguments after the program's own `--role=keys` (or `--role keys`). */
function withoutRole(argv: string[]): string[] {
  const at = argv.findIndex((arg) => arg === "--role" || arg.startsWith("--role="));
  if (at === -1) return argv;
  return argv.filter((_, i) => i !== at && !(argv[at] === "--role" && i === at + 1));
}

/** node:util's parseArgs refuses an unknown or incomplete option with one of these codes. */
const isArgsError = (err: unknown) => String((err as { code?: unknown }).code ?? "").startsWith("ERR_PARSE_ARGS");

const fieldsOf = (errors: FieldError[]) =>
  errors.map(({ field, message }) => `${field || "body"} ${message}`).join("; ");

/**
 * The keys role (docs: access-control, "The first key"): for the first administrator, automation
 * and an operator locked out of the API. Writes exactly one JSON object to stdout (the created key
 * with its secret, the list, the revoked key, or {"error": ...}) and returns the exit code. Log
 * lines go to `log`, which the role writes to stderr; none holds a secret.
 */
export async function runKeysCommand(
  argv: string[],
  { db, stdout, log }: { db: Db; stdout: (text: string) => void; log: Logger },
): Promise<0 | 1> {
  const service = keyService({ db, clock: systemClock, log }, { cacheTtlMs: 0 });
  const write = (value: unknown) => stdout(`${JSON.stringify(value)}\n`);
  try {
    const { positionals, values } = parseArgs({
      args: withoutRole(argv),
      allowPositionals: true,
      options: { name: { type: "string" }, scopes: { type: "string" }, "expires-at": { type: "string" } },
    });
    const [command, ...rest] = positionals;
    switch (command) {
      case "create": {
        if (rest.length > 0) throw new UsageError(`create takes no arguments, got ${rest.join(" ")}`);
        const expiresAt = values["expires-at"];
        const input = validateCreateKey({
          name: values.name,
          scopes: values.scopes?.split(",").map((scope) => scope.trim()),
          ...(expiresAt === undefined ? {} : { expires_at: expiresAt }),
        });
        if (!input.ok) throw new UsageError(fieldsOf(input.errors));
        write(await service.create(input.value, BOOTSTRAP));
        return 0;
      }
      case "list": {
        if (rest.length > 0 || Object.keys(values).length > 0) throw new UsageError("list takes no arguments");
        let page = await service.list({ limit: PAGE_LIMIT_MAX });
        const results = page.results;
        while (page.next_cursor) {
          page = await service.list({ limit: PAGE_LIMIT_MAX, cursor: decodeCursor(page.next_cursor)?.position });
          results.push(...page.results);
        }
        write({ results });
        return 0;
      }
      case "revoke": {
        const [id, ...extra] = rest;
        if (id === undefined || extra.length > 0 || Object.keys(values).length > 0) {
          throw new UsageError("revoke takes one key id");
        }
        if (!isUuid(id)) throw new NotFound("API key");
        write(await service.revoke(id.toLowerCase(), BOOTSTRAP));
        return 0;
      }
      default:
        throw new UsageError(command === undefined ? "a command is required" : `unknown command ${command}`);
    }
  } catch (err) {
    // A wrong command line or an unknown key is the operator's to fix: one line, no stack.
    const known =
      err instanceof UsageError || err instanceof NotFound || err instanceof ValidationFailed || isArgsError(err);
    const message =
      err instanceof ValidationFailed ? fieldsOf(err.errors) : err instanceof Error ? err.message : String(err);
    if (known) log.error(`keys: ${message}`, { usage: KEYS_USAGE });
    else log.error("keys: failed", { err });
    write({ error: { message: known ? message : "failed; see the log on stderr" } });
    return 1;
  }
}
