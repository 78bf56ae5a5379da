# osc: build, test against the real-database sandbox (localtests/sandbox.sh), demo, bench.
# Every target works without standard input (CI runs `make test` as root with CI=true).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
# A clean CI shell may not have Go on PATH.
export PATH := /usr/local/go/bin:$(PATH)

GO ?= go
SANDBOX := bash localtests/sandbox.sh
# Runs a command with the sandbox's OSC_* variables exported.
WITH_SANDBOX_ENV := eval "$$($(SANDBOX) env)" &&

# golangci-lint, pinned; built from the Go module proxy into bin/ (make lint).
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := bin/golangci-lint-$(GOLANGCI_LINT_VERSION)/golangci-lint

.DEFAULT_GOAL := build
.PHONY: build sandbox lint test differential stress demo bench down

build:
	$(GO) build -buildvcs=auto -o bin/osc ./cmd/osc

sandbox:
	$(SANDBOX) up

# The linters in .golangci.yml, gofmt included. The first run builds golangci-lint
# (about 3 minutes with empty Go caches).
lint: $(GOLANGCI_LINT)
	$(GOLANGCI_LINT) run ./...

$(GOLANGCI_LINT):
	GOBIN=$(CURDIR)/$(@D) $(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION) </dev/null

# Lint runs beside the tests (building golangci-lint takes minutes with empty Go caches, while the
# real-database tests mostly wait on the servers); its output follows theirs, and either failing fails.
# go test runs two packages at a time in the order given: the two longest (localtests, dialect) start
# first, side by side, and the others follow dialect's, so that localtests does not start last.
# -timeout 60m: a net for a hung test, not the suite's budget (20 minutes); on a slow, shared 2-core
# machine localtests alone has needed more than 40 (CI's limit is 90 for everything).
test: sandbox
	mkdir -p bin
	$(MAKE) --no-print-directory lint >bin/lint.log 2>&1 & lint=$$!; \
	rc=0; { $(WITH_SANDBOX_ENV) $(GO) vet ./... && $(WITH_SANDBOX_ENV) $(GO) test ./localtests ./dialect ./... -count=1 -timeout 60m; } || rc=$$?; \
	lrc=0; wait $$lint || lrc=$$?; \
	echo "==> make lint (exit $$lrc):"; cat bin/lint.log; \
	if ((rc != 0)); then exit $$rc; fi; exit $$lrc

# Every differential case (localtests/differential/*.cases); make test runs a fixed half of them. A change
# to the copy, the applier, the checksum, the cut-over or the shadow's definition runs this before it lands.
differential: sandbox
	$(WITH_SANDBOX_ENV) OSC_DIFF_ALL=1 $(GO) test ./localtests -run 'TestDifferential' -count=1 -timeout 60m </dev/null

# The stress cases (localtests/stress_test.go) STRESS_RUNS times per database and table variant, with
# busy loops on every core, ending with runs / failed runs per variant. STRESS_CASES narrows them down
# (a go test -run pattern below TestStress: postgres, mysql/int_pk, postgres/toast).
STRESS_RUNS ?= 100
STRESS_CASES ?= .
stress: sandbox
	$(WITH_SANDBOX_ENV) OSC_STRESS_RUNS=$(STRESS_RUNS) OSC_STRESS_CPU=1 \
		$(GO) test ./localtests -run 'TestStress/$(STRESS_CASES)' -count=1 -v -timeout 0 </dev/null

demo: sandbox build
	$(WITH_SANDBOX_ENV) $(GO) run ./cmd/osc-demo --osc bin/osc

# osc's copy rate against the server's raw INSERT … SELECT, with and without a
# write load, and gh-ost / pg_repack when on PATH, on 1,000,000 rows per database (BENCH_ARGS="--rows 20000" for a
# quick run). The writers' latency plot goes to osc-bench.svg.
bench: sandbox build
	$(WITH_SANDBOX_ENV) $(GO) run ./cmd/osc-bench --osc bin/osc $(BENCH_ARGS) </dev/null

down:
	$(SANDBOX) down
