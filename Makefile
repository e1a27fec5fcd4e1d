# Salvo's entry points. `make bench` runs the default scenario on the embedded default (no
# Docker, no cloud account); `make test` runs the whole test suite, installing the AWS
# emulators it needs into .tools/ and Debian's Chromium (for the console's browser tests)
# first.

GO        ?= go
BIN       := bin/salvo
TOOLS_DIR := $(CURDIR)/.tools
SCENARIO  ?= throughput
OUT       ?= results/latest

.PHONY: build test test-short bench bench-ci lint emulators browser clean

build:
	$(GO) build -o $(BIN) ./cmd/salvo

# Installs pinned Node 22, fauxqs (SQS + S3) and dynalite (DynamoDB) from npm into .tools/.
emulators:
	bash localstack/install-emulators.sh $(TOOLS_DIR)

# Installs Debian's chromium and chromium-driver when they are missing (needs root or
# password-less sudo; otherwise it says so and the browser tests skip, or fail on CI).
browser:
	bash sender/console/install-chromium.sh

test: emulators browser
	SALVO_TOOLS_DIR=$(TOOLS_DIR) $(GO) test -race -count=1 -timeout 20m ./...

test-short:
	$(GO) test -short -count=1 ./...

bench: build
	$(BIN) bench --scenario $(SCENARIO) --out $(OUT)

# The CI gate: the short ci scenario five times (results/ci/run-1..5), then the comparison
# of their medians against the committed baseline (docs/scenarios.md). A run that only
# failed a criterion (exit 1) is left to the comparison, which fails on correctness and
# judges speed by the medians; a setup failure (exit 2) stops here.
CI_REPEAT ?= 5
bench-ci: build
	rm -rf results/ci
	$(BIN) bench --scenario ci --repeat $(CI_REPEAT) --out results/ci || [ $$? -eq 1 ]
	$(BIN) results compare --baseline results/baseline.json --current results/ci

lint:
	$(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

clean:
	rm -rf bin results/latest results/ci
