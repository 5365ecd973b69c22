// The repository documents itself: its links stay inside it, docs/ names every error code the api
// answers with, and every variable the program reads is in docs/configuration.md, the README and
// .env.example.
import { expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { PROBLEM_CODES } from "../../src/api/problem";
import { loadConfig } from "../../src/config";

const ROOT = join(import.meta.dir, "..", "..");
const read = (name: string) => readFileSync(join(ROOT, name), "utf8");
const tracked = Bun.spawnSync(["git", "ls-files"], { cwd: ROOT, stdout: "pipe" })
  .stdout.toString()
  .split("\n")
  .filter((name) => name && existsSync(join(ROOT, name)) && !name.endsWith(".lock"));
const markdown = tracked.filter((name) => name.endsWith(".md"));

test("no file in the repository points outside it", () => {
  // This file names the patterns it looks for.
  const outside = tracked
    .filter((name) => name !== "test/ship/docs.test.ts")
    .filter((name) => /\.\.\/shared\b|\/work\/shared\b/.test(read(name)));
  expect(outside).toEqual([]);
});

test("every relative link in the Markdown files names a file inside the repository", () => {
  const broken: string[] = [];
  for (const name of markdown) {
    for (const [, target] of read(name).matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/i.test(target as string) || (target as string).startsWith("#")) continue;
      const path = resolve(ROOT, dirname(name), (target as string).split("#")[0] as string);
      if (relative(ROOT, path).startsWith("..") || !existsSync(path)) broken.push(`${name}: ${target}`);
    }
  }
  expect(broken).toEqual([]);
  expect(read("README.md").includes("](docs/README.md)")).toBe(true);
});

test("docs/errors.md names every problem code the api answers with", () => {
  const errors = read("docs/errors.md");
  expect(PROBLEM_CODES.filter((code) => !errors.includes(`\`${code}\``))).toEqual([]);
});

test("every variable the program reads is documented in docs/, the README and .env.example", () => {
  const read_ = new Set<string>();
  loadConfig(
    new Proxy({} as Record<string, string | undefined>, {
      get: (_, name) => {
        if (typeof name === "string") read_.add(name);
        return undefined;
      },
    }),
  );
  expect(read_.size).toBeGreaterThan(15);
  for (const file of ["docs/configuration.md", "README.md", ".env.example"]) {
    const text = read(file);
    const missing = [...read_].filter((name) => !new RegExp(`\\b${name}\\b`).test(text));
    expect({ file, missing }).toEqual({ file, missing: [] });
  }
});
