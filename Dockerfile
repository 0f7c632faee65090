# Cutover's binaries (`cutover`, `cutover-worker`) for Kubernetes (k8s/): built with the
# workspace's locked dependencies, run as a non-root user on a distroless base with nothing
# but glibc and CA certificates. `command` steps can only run programs present in the image:
# derive your own image (FROM this one) to add the tools your runbooks call.
#
#   docker build -t ghcr.io/cutover-dev/cutover:0.1.0 .

FROM rust:1.95-bookworm AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends protobuf-compiler \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --release --bin cutover --bin cutover-worker \
    && mkdir -p /out && cp target/release/cutover target/release/cutover-worker /out/

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/cutover /out/cutover-worker /usr/local/bin/
USER 65532:65532
WORKDIR /var/lib/cutover
ENTRYPOINT []
CMD ["cutover-worker"]
