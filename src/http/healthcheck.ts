import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import type { Role } from "../config";

/**
 * The command line of the container's first process (PID 1: the binary itself, or an init such as
 * Docker's `init: true` that runs it with its arguments): a healthcheck started beside it finds
 * the container's `--role` there. Empty where it cannot be read.
 */
export function containerArgs(cmdline = "/proc/1/cmdline"): string[] {
  try {
    return readFileSync(cmdline, "utf8").split("\0");
  } catch {
    return [];
  }
}

/** PID 1 and its children: the role's process, whether it is PID 1 or an init's child. */
function containerProcesses(): number[] {
  try {
    const children = readFileSync("/proc/1/task/1/children", "utf8").trim();
    return [1, ...children.split(/\s+/).filter(Boolean).map(Number)];
  } catch {
    return [1];
  }
}

/**
 * The TCP ports these processes listen on: their socket descriptors (/proc/<pid>/fd) found among
 * the listening sockets of the kernel's tables (/proc/<pid>/net/tcp and tcp6). Read-only, so it
 * needs no writable path; a process it may not inspect (another user's) adds nothing.
 */
function listeningPorts(pids: number[]): number[] {
  const ports = new Set<number>();
  for (const pid of pids) {
    let inodes: Set<string>;
    try {
      inodes = new Set(
        readdirSync(`/proc/${pid}/fd`)
          .map((fd) => {
            try {
              return /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/${pid}/fd/${fd}`))?.[1];
            } catch {
              return undefined; // closed since the listing
            }
          })
          .filter((inode): inode is string => inode !== undefined),
      );
    } catch {
      continue;
    }
    for (const table of ["tcp", "tcp6"]) {
      let lines: string[];
      try {
        lines = readFileSync(`/proc/${pid}/net/${table}`, "utf8").split("\n").slice(1);
      } catch {
        continue;
      }
      for (const line of lines) {
        // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
        const fields = line.trim().split(/\s+/);
        const [local, state, inode] = [fields[1], fields[3], fields[9]];
        // 0A: LISTEN
        if (state === "0A" && local && inode && inodes.has(inode))
          ports.add(Number.parseInt(local.split(":")[1] ?? "", 16));
      }
    }
  }
  return [...ports];
}

/**
 * `payouts --healthcheck`: whether this container's role is healthy, asked over HTTP on the
 * loopback within `timeoutMs`. Docker's HEALTHCHECK runs it, since the runtime image has no curl
 * or shell. The api (and role `all`) must answer /health/ready with 200 on PORT; the worker
 * /health on METRICS_PORT, where it reports its threads. A port of 0 (the system picked one) is
 * found among the ports the container's processes (`pids`) listen on: the worker listens on no
 * other, the api on PORT alone.
 */
export async function roleIsHealthy(
  role: Role,
  listen: { host: string; port: number; metricsPort: number },
  { timeoutMs = 3000, pids = containerProcesses } = {},
): Promise<boolean> {
  const host = listen.host === "0.0.0.0" || listen.host === "::" ? "127.0.0.1" : listen.host;
  const [port, path] = role === "worker" ? [listen.metricsPort, "/health"] : [listen.port, "/health/ready"];
  const ports = port === 0 ? listeningPorts(pids()) : [port];
  const healthy = async (p: number) => {
    try {
      const url = `http://${host.includes(":") ? `[${host}]` : host}:${p}${path}`;
      return (await fetch(url, { signal: AbortSignal.timeout(timeoutMs) })).status === 200;
    } catch {
      return false;
    }
  };
  return (await Promise.all(ports.map(healthy))).some(Boolean);
}
