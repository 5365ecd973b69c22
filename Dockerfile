# One image for every role: the compiled binary (`bun run build`) with its migrations beside it.
# No `# syntax` line: the engine's built-in frontend builds it, with no pull from a registry.
#   docker build -t payouts:local .
#   docker run --rm --init -e DATABASE_URL=... -e AMQP_URL=... payouts:local --role=migrate   (then --role=api, --role=worker)

FROM oven/bun:1.4.4 AS build
WORKDIR /src
COPY package.json bun.lock bunfig.toml ./
COPY patches ./patches
# The build needs only the runtime dependencies; no lifecycle scripts (git hooks) in an image.
RUN bun install --frozen-lockfile --production --ignore-scripts
COPY tsconfig.json ./
COPY src ./src
COPY drizzle ./drizzle
RUN bun run build

# glibc and CA certificates, no shell, no package manager; the binary needs nothing else.
FROM gcr.io/distroless/cc-debian12:nonroot AS runtime
# /app and everything in it belong to root, so the runtime user cannot replace the binary even
# where the root filesystem is writable: COPY creates them as root, whereas a WORKDIR that creates
# /app makes it the current USER's under BuildKit (the base image's, 65532).
COPY --from=build /src/dist/payouts /app/payouts
COPY --from=build /src/dist/drizzle /app/drizzle
WORKDIR /app
# distroless's "nonroot" user, by number so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# As `bun run start` does: size JavaScriptCore's heap as for a 128 MiB machine, so that the GC runs
# sooner and each process stays under 100 MB instead of growing with the node's RAM; and no FTL,
# JavaScriptCore's last JIT tier, whose compiles cost more memory and CPU than they win here.
ENV BUN_JSC_forceRAMSize=134217728 BUN_JSC_useFTLJIT=0
EXPOSE 8000 9100
# The image has no curl: the binary asks the role running in this container (PID 1's --role) over
# the loopback: the api's /health/ready on PORT, the worker's /health on METRICS_PORT (exit 0 when 200).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["/app/payouts", "--healthcheck"]
ENTRYPOINT ["/app/payouts"]
CMD ["--role=api"]
