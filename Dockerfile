# The operator image: a release build on Debian bookworm, run as non-root on distroless.
#   docker build -t hipaa-operator:0.1.0 .
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates crates
COPY src src
COPY benches benches
COPY examples examples
RUN cargo build --release --locked --bin hipaa-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/hipaa-operator /usr/local/bin/hipaa-operator
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/hipaa-operator"]
CMD ["run"]
