# Salvo's entry points. `make bench` runs the default scenario on the embedded default (no
# Docker, no cloud account); `make test` runs the whole test suite, installing the AWS
# emulators it needs into .tools/ first.

GO        ?= go
BIN       := bin/salvo
TOOLS_DIR := $(CURDIR)/.tools
SCENARIO  ?= throughput
OUT       ?= results/latest

.PHONY: build test test-short bench bench-ci lint emulators clean

build:
	$(GO) build -o $(BIN) ./cmd/salvo

# Installs pinned Node 22, fauxqs (SQS + S3) and dynalite (DynamoDB) from npm into .tools/.
emulators:
	bash localstack/install-emulators.sh $(TOOLS_DIR)

test: emulators
	SALVO_TOOLS_DIR=$(TOOLS_DIR) $(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench: build
	$(BIN) bench --scenario $(SCENARIO) --out $(OUT)

# The CI gate (docs/gate.md): `salvo gate` builds the base revision BASE (default: the
# merge-base with main, or HEAD~1 on main itself) and the working tree, plays the two in
# interleaved pairs on this machine and compares them; the report lands in results/gate/.
# make turns any failure of the gate into its own exit code 2: tools that need the gate's
# three codes (0 no regression, 1 a regression or a correctness failure, 2 could not run)
# call bin/salvo gate themselves.
# The candidate is the bin/salvo just built from the working tree.
BASE ?=
bench-ci: build
	$(BIN) gate $(if $(BASE),--base $(BASE)) --candidate-bin $(BIN) --out results/gate

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin results/latest results/ci results/gate
