# The Makefile mirrors CI: .ci/run installs services and calls `make test`.
GO        ?= go
BIN       := bin/edgestock
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X main.version=$(VERSION)
WAREHOUSE ?= wh1
DATA_DIR  ?= ./edgestock-data

.PHONY: build run test bench bench-quick bench-scale lint fuzz package clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgestock

# An agent with its embedded broker (127.0.0.1:1883), HTTP on 127.0.0.1:7070
# and SQLite in $(DATA_DIR). Ctrl-C stops it gracefully. Anonymous MQTT is
# allowed here, for a trial on one PC; the agent's default is deny.
run: build
	./$(BIN) agent --warehouse $(WAREHOUSE) --data-dir $(DATA_DIR) --mqtt-anonymous allow

# Lint, then every test with the race detector. Tests that need a service
# (mosquitto, PostgreSQL, chromium) skip loudly without it, and fail under CI=true.
test: lint
	GOOS=windows $(GO) build ./...
	./.ci/gotest

# Every figure of docs/BENCHMARKS.md in one table, in under 3 minutes: the
# agent side by side with mosquitto's bare subscriber, the same mochi broker
# with a no-op hook and Redis (+ Lua, appendfsync always) for cart holds.
# Writes bench-out/: report.txt, bench.json, report.html, profiles/.
bench-quick: build
	$(GO) run ./internal/cmd/ingestbench -bin $(BIN) -quick -out-dir bench-out

# Micro-benchmarks, the agent's in-process benchmarks (ingest, reservations),
# the hub's, then the long version of bench-quick. About 10 minutes.
bench: build
	$(GO) test -run '^$$' -bench . -benchmem -count 3 ./crdt/ ./internal/store/ ./drivers/...
	$(GO) test -run '^$$' -bench . -benchtime 20000x -count 3 ./agent/
	$(GO) test -run '^$$' -bench Hub_Latency -benchtime 500x -count 3 ./sync/hub/
	$(GO) test -run '^$$' -bench Hub_Orders -benchtime 5000x -count 3 ./sync/hub/
	$(GO) test -run '^$$' -bench Hub_Stream -benchtime 50x -count 3 ./sync/hub/
	$(GO) test -run '^$$' -bench Hub_Webhooks -benchtime 50x -count 3 ./sync/hub/
	$(GO) run ./internal/cmd/ingestbench -bin $(BIN) -out-dir bench-out

# The hub's scale run (docs/SCALE.md): SITES light agents in one process
# against one hub process on the PostgreSQL of $$EDGESTOCK_TEST_POSTGRES,
# uplink and pull side by side. Minutes; not part of bench.
SITES ?= 500
bench-scale: build
	$(GO) run ./internal/cmd/scalebench -bin $(BIN) -sites $(SITES) -rate 1 -warmup 10s -duration 30s

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) run ./internal/cmd/importcheck
	$(GO) vet ./...
	@cp go.mod go.mod.lint-bak; cp go.sum go.sum.lint-bak; $(GO) mod tidy; \
	if ! cmp -s go.mod go.mod.lint-bak || ! cmp -s go.sum go.sum.lint-bak; then \
		echo "go mod tidy changes go.mod/go.sum:"; diff go.mod.lint-bak go.mod; \
		mv go.mod.lint-bak go.mod; mv go.sum.lint-bak go.sum; exit 1; fi; \
	rm -f go.mod.lint-bak go.sum.lint-bak

# Fuzz every decoder for FUZZTIME each (seed corpora in testdata/fuzz).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./drivers/events -run '^$$' -fuzz FuzzDriver_Decode -fuzztime $(FUZZTIME)
	$(GO) test ./drivers/events -run '^$$' -fuzz FuzzScanObject -fuzztime $(FUZZTIME)
	$(GO) test ./drivers/scanner -run '^$$' -fuzz FuzzDriver_Decode -fuzztime $(FUZZTIME)
	$(GO) test ./drivers/scanner -run '^$$' -fuzz FuzzParseElements -fuzztime $(FUZZTIME)
	$(GO) test ./drivers/pos -run '^$$' -fuzz FuzzDriver_Decode -fuzztime $(FUZZTIME)
	$(GO) test ./drivers/filedrop -run '^$$' -fuzz FuzzDriver_Scan -fuzztime $(FUZZTIME)
	$(GO) test ./crdt -run '^$$' -fuzz FuzzPNCounter_UnmarshalBinary -fuzztime $(FUZZTIME)
	$(GO) test ./crdt -run '^$$' -fuzz FuzzEscrow_UnmarshalBinary -fuzztime $(FUZZTIME)
	$(GO) test ./internal/replenish -run '^$$' -fuzz FuzzDemand_UnmarshalBinary -fuzztime $(FUZZTIME)

# .deb and .rpm in dist/ with nfpm (fetched through the Go module proxy).
NFPM ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
# A release tag vX.Y.Z gives X.Y.Z; otherwise 0.0.0~git<commit>.
PKG_VERSION ?= $(shell v=$$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); \
	if [ -n "$$v" ]; then echo $${v#v}; else echo 0.0.0~git$$(git rev-parse --short HEAD 2>/dev/null || echo unknown); fi)
package: build
	mkdir -p dist
	VERSION=$(PKG_VERSION) ARCH=$$($(GO) env GOARCH) $(NFPM) package -f packaging/nfpm.yaml -p deb -t dist/
	VERSION=$(PKG_VERSION) ARCH=$$($(GO) env GOARCH) $(NFPM) package -f packaging/nfpm.yaml -p rpm -t dist/

clean:
	rm -rf bin dist
