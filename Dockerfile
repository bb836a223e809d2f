# syntax=docker/dockerfile:1
# The triage image: one binary that runs both the sidecar (`triage serve`)
# and the injection webhook (`triage inject`).
#
# NOTE: no container engine runs in this project's CI, so this build is
# not exercised by tests; see docs/kubernetes.md.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# build.rs uses the protoc vendored in protoc-bin-vendored, so the image
# needs no system protoc. The cache mounts keep the registry and target
# directory between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin triage \
    && install -D -m 0755 target/release/triage /out/triage

# distroless/cc has glibc and libgcc, which the binary links against, and
# no shell or package manager. The nonroot tag runs as UID 65532, the UID
# the sidecar template and the chart set.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/triage /usr/local/bin/triage
USER 65532:65532
EXPOSE 7575 7576 8443
ENTRYPOINT ["/usr/local/bin/triage"]
CMD ["serve"]
