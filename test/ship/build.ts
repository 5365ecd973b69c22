// The compiled binary as package.json's build script makes it, written to a directory of a test's own.
import { readFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");

/** Runs the build script with `dir/dist/` in place of the project's dist/; returns the binary's path. */
export function buildBinary(dir: string): string {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
  const command = (scripts.build as string).replaceAll("dist/", `${dir}/dist/`);
  const build = Bun.spawnSync(["sh", "-c", command], { cwd: ROOT, stdout: "pipe", stderr: "pipe" });
  if (build.exitCode !== 0) throw new Error(`build failed: ${build.stderr.toString()}`);
  return join(dir, "dist", "payouts");
}
