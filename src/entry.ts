// The program's entry point, small on purpose. The compiled binary is split into chunks
// (`--splitting` in the build script), so this chunk is all that is parsed before the process's
// handlers (src/roles/lifecycle.ts) are in place, in tens of milliseconds rather than the hundreds the
// whole 2 MB program takes: a SIGTERM sent to a container's PID 1 before its handler exists is lost.
import "./roles/lifecycle";

await import("./main");
