# syntax=docker/dockerfile:1
# A static, version-stamped reroll on a distroless, non-root base.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY cmd/ cmd/
COPY pkg/ pkg/
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/reroll ./cmd/controller

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/reroll /reroll
USER 65532:65532
ENTRYPOINT ["/reroll"]
