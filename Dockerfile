# syntax=docker/dockerfile:1
# The operator image: built with the release build the README documents (`make release`), then copied into a
# distroless image (glibc, CA certificates, no shell, no package manager) that runs as a non-root user.
#   docker build -t ivschat-operator:0.1.0 .

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the registry and the target dir between builds; the binary leaves the cached target dir
# in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    make release \
    && install -D -m 0755 /src/target/release/ivschat-operator /out/ivschat-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/ivschat-operator /usr/local/bin/ivschat-operator
# The distroless "nonroot" user; the Deployment's securityContext asks for the same ids.
USER 65532:65532
EXPOSE 8080 8081
ENTRYPOINT ["/usr/local/bin/ivschat-operator"]
CMD ["run"]
