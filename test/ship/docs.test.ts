// The repository documents itself: its links stay inside it and lead somewhere, the README stays a
// front door that points at every page, docs/ names every error code the api answers with, and
// docs/configuration.md's one table lists exactly the variables the program reads, as does
// .env.example.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { loadConfig } from "../../src/config";
import { PROBLEM_CODES } from "../../src/http/problem";

const ROOT = join(import.meta.dir, "..", "..");
const read = (name: string) => readFileSync(join(ROOT, name), "utf8");
const tracked = Bun.spawnSync(["git", "ls-files", "--cached", "--others", "--exclude-standard"], {
  cwd: ROOT,
  stdout: "pipe",
})
  .stdout.toString()
  .split("\n")
  .filter((name) => name && existsSync(join(ROOT, name)) && !name.endsWith(".lock"));
const markdown = tracked.filter((name) => name.endsWith(".md"));

/** Markdown without its fenced code blocks: a `#` there is a shell comment, a `](` is code. */
const prose = (text: string) => text.replace(/^(```|~~~)[^\n]*\n[\s\S]*?^\1[^\n]*$/gm, "");

/** The anchors GitHub gives a file's headings: lower case, punctuation dropped, spaces to hyphens. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  for (const [, heading] of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = (heading as string)
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, "")
      .replace(/\s/g, "-");
    const count = seen.get(slug) ?? 0;
    seen.set(slug, count + 1);
    result.add(count === 0 ? slug : `${slug}-${count}`);
  }
  return result;
}

test("no file in the repository points outside it", () => {
  // This file names the patterns it looks for.
  const outside = tracked
    .filter((name) => name !== "test/ship/docs.test.ts")
    .filter((name) => /\.\.\/shared\b|\/work\/shared\b/.test(read(name)));
  expect(outside).toEqual([]);
});

test("every relative link in the Markdown files names a file inside the repository, and a heading in it", () => {
  const broken: string[] = [];
  for (const name of markdown) {
    for (const [, target] of prose(read(name)).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target as string)) continue;
      const [file, anchor] = (target as string).split("#") as [string, string | undefined];
      const path = file === "" ? join(ROOT, name) : resolve(ROOT, dirname(name), file);
      if (relative(ROOT, path).startsWith("..") || !existsSync(path)) broken.push(`${name}: ${target}`);
      else if (anchor !== undefined && !anchors(readFileSync(path, "utf8")).has(anchor)) {
        broken.push(`${name}: ${target} (no such heading)`);
      }
    }
  }
  expect(broken).toEqual([]);
});

test("the README is a front door: short, a request within its first screens, a link to every page", () => {
  const readme = read("README.md");
  const lines = readme.split("\n");
  expect(lines.length).toBeLessThanOrEqual(220);
  expect(lines.findIndex((line) => line.startsWith("curl "))).toBeLessThan(80);
  const pages = [
    "docs/README.md",
    "docs/configuration.md",
    "docs/architecture.md",
    "docs/operations.md",
    "docs/dependencies.md",
    "docs/errors.md",
    "docs/events-and-webhooks.md",
    "docs/idempotency.md",
    "docs/payouts.md",
    "bench/README.md",
  ];
  expect(pages.filter((page) => !readme.includes(`](${page})`))).toEqual([]);
});

test("docs/errors.md names every problem code the api answers with", () => {
  const errors = read("docs/errors.md");
  expect(PROBLEM_CODES.filter((code) => !errors.includes(`\`${code}\``))).toEqual([]);
});

/** Every environment variable src/config.ts reads: what loadConfig asks for, and the names it spells out. */
function variablesRead(): string[] {
  const asked = new Set<string>();
  loadConfig(
    new Proxy({} as Record<string, string | undefined>, {
      get: (_, name) => {
        if (typeof name === "string") asked.add(name);
        return undefined;
      },
    }),
  );
  // A read that only happens for some values would escape the proxy; its name is still in the source.
  for (const [, field, argument] of read("src/config.ts").matchAll(
    /\benv\.([A-Z][A-Z0-9_]*)|\benv, "([A-Z][A-Z0-9_]*)"/g,
  )) {
    asked.add((field ?? argument) as string);
  }
  return [...asked].sort();
}

/** The first cell of each row of the tables in `text`, where it is one backticked name. */
const tableVariables = (text: string) =>
  [...text.matchAll(/^\| `([A-Za-z_][A-Za-z0-9_]*)` \|/gm)].map(([, name]) => name as string).sort();

const configuration = read("docs/configuration.md");
const bunSection = configuration.indexOf("\n## Read by Bun");

test("only src/config.ts reads the environment", () => {
  const readers = tracked
    .filter((name) => name.startsWith("src/") && name.endsWith(".ts") && name !== "src/config.ts")
    .filter((name) => /\b(process|Bun)\.env(\.|\[)/.test(read(name)));
  expect(readers).toEqual([]);
});

test("docs/configuration.md's table lists exactly the variables src/config.ts reads", () => {
  const variables = variablesRead();
  expect(variables.length).toBeGreaterThan(20);
  expect(bunSection).toBeGreaterThan(0);
  expect(tableVariables(configuration.slice(0, bunSection))).toEqual(variables);
});

test(".env.example sets exactly the variables src/config.ts reads, and shows Bun's own commented out", () => {
  const example = read(".env.example");
  const set = [...example.matchAll(/^([A-Za-z_][A-Za-z0-9_]*)=/gm)].map(([, name]) => name as string).sort();
  expect(set).toEqual(variablesRead());
  const commented = [...example.matchAll(/^# ([A-Za-z_][A-Za-z0-9_]*)=/gm)].map(([, name]) => name as string).sort();
  expect(commented).toEqual(tableVariables(configuration.slice(bunSection)));
});

test("the variables read by Bun itself are the ones `bun run start` and the image set", () => {
  const bun = tableVariables(configuration.slice(bunSection));
  expect(bun.length).toBeGreaterThan(0);
  const start = (JSON.parse(read("package.json")) as { scripts: { start: string } }).scripts.start;
  const dockerfile = read("Dockerfile");
  for (const name of bun) {
    const value = new RegExp(`\\b${name}=(\\S+)`);
    expect({ name, start: start.match(value)?.[1] }).toEqual({ name, start: dockerfile.match(value)?.[1] });
    expect(start.match(value)?.[1]).toBeDefined();
    expect(configuration.slice(bunSection)).toContain(`\`${start.match(value)?.[1]}\``);
  }
});
