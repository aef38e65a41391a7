# nri-armor — see README.md. `make test` runs every test; CI runs it via .ci/run.
GO           ?= go
STATICCHECK  := honnef.co/go/tools/cmd/staticcheck@v0.8.2
FUZZTIME     ?= 15s
BIN          := bin
PKGS         := ./...

.PHONY: all build test unit fuzz lint bench clean bpf-generate bpf-check

all: build

build:
	$(GO) build -o $(BIN)/ ./cmd/...

# Every test: lint, the BPF regeneration check, unit, conformance and host
# privileged tests (root) with the race detector, then a short run of each
# fuzz target.
test: lint bpf-check unit fuzz

unit:
	$(GO) test -race -count=1 $(PKGS)

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzLoad$$' -fuzztime $(FUZZTIME) ./policy
	$(GO) test -run '^$$' -fuzz '^FuzzDecide$$' -fuzztime $(FUZZTIME) ./policy

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)

# The committed BPF objects must be what the pinned clang builds.
bpf-generate:
	./hack/bpf-generate.sh

bpf-check:
	./hack/bpf-generate.sh --check

# Benchmarks; hack/bench.sh prints the figures the issues ask for.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf $(BIN)
