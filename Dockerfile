# syntax=docker/dockerfile:1
#
# Interference in a container:
#
#   docker build -t interference .
#   docker run --rm -p 1337:1337 -e INTERFERENCE_API_KEY=change-me interference
#
# Three stages, so that the final image holds no compiler output it does not run, no TypeScript
# sources and no dev dependencies (Portkey, playwright, eslint, … are bench and test tools only):
#   deps     production node_modules, installed once from the lockfile
#   build    deps + src/ → dist/ (typescript and @types/node are regular dependencies, so the
#            production install is enough to compile: `prepare` builds on a plain `npm ci`)
#   runtime  node_modules from deps, dist/ from build, web/ and package.json from the context
#
# test/docker.test.ts runs these steps outside Docker (it cannot run on the CI machine), parsing
# this file: keep one instruction per concern and the RUN commands runnable from the stage's
# WORKDIR.

ARG NODE_IMAGE=node:20-bookworm-slim

FROM ${NODE_IMAGE} AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the root `prepare` would compile before src/ is here; node-llama-cpp's
# postinstall only checks its prebuilt binary and, if that fails to load, tries to compile
# llama.cpp from source (no cmake or compiler in a slim image). The prebuilt binaries arrive as
# optional dependencies (@node-llama-cpp/linux-x64, linux-arm64, …), which npm installs without
# running any script.
# The CUDA and Vulkan variants (about 620 MB on x64) are removed: the embedded model always runs
# with `gpu: false, build: 'never'` (src/providers/local/local-provider.ts), so only the CPU
# binary for this platform is ever loaded.
# npm's download cache is a BuildKit cache mount: reused across builds, never part of a layer.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && rm -rf node_modules/@node-llama-cpp/*-cuda* node_modules/@node-llama-cpp/*-vulkan

FROM deps AS build
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM ${NODE_IMAGE} AS runtime
# HOST=0.0.0.0: the gateway listens on loopback by default, unreachable from outside a container.
# Set INTERFERENCE_API_KEY when running it (never baked into the image): the server warns when it
# listens on a non-loopback address without a key. Provider keys (GROQ_API_KEY, …) likewise.
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=1337 \
    INTERFERENCE_MODELS_DIR=/data/models \
    INTERFERENCE_IMAGES_DIR=/data/images
WORKDIR /app
# Owned by root and read-only for the user that runs the server: the code cannot be rewritten
# by the process it serves. package.json is read for the version and to find web/.
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY web ./web
# The only writable places: the embedded model's downloads and the generated images. Created here
# so that the named volumes mounted on them start out owned by `node` (uid 1000 in node images).
RUN mkdir -p "$INTERFERENCE_MODELS_DIR" "$INTERFERENCE_IMAGES_DIR" \
 && chown node:node "$INTERFERENCE_MODELS_DIR" "$INTERFERENCE_IMAGES_DIR"
VOLUME ["/data/models", "/data/images"]
USER node
EXPOSE 1337
# Liveness only (/health answers while the process serves). Slim images have no curl: Node's
# fetch does it. compose.yaml replaces it with /ready, which also needs Redis.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 1337) + '/health', { signal: AbortSignal.timeout(4000) }).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
CMD ["node", "dist/src/main.js"]
