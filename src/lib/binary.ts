/**
 * True in the executable that `bun run build` compiles: its modules live in Bun's embedded
 * filesystem (`/$bunfs/` on Unix, `B:/~BUN/` on Windows), not on disk.
 */
export const compiledBinary = import.meta.path.startsWith("/$bunfs/") || import.meta.path.includes("~BUN");
