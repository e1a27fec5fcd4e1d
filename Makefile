# Salvo's entry points. `make bench` runs the default scenario on the embedded default (no
# Docker, no cloud account); `make test` runs the whole test suite, installing the AWS
# emulators it needs into .tools/ and Debian's Chromium (for the console's browser tests)
# first.

GO        ?= go
BIN       := bin/salvo
TOOLS_DIR := $(CURDIR)/.tools
SCENARIO  ?= throughput
OUT       ?= results/latest
K6_DIR    := loadgen/k6

.PHONY: build test test-short bench bench-ci lint emulators browser test-browser clean k6 k6-push k6-campaign test-k6 fuzz-short

build:
	$(GO) build -o $(BIN) ./cmd/salvo

# Installs pinned Node 22, fauxqs (SQS + S3) and dynalite (DynamoDB) from npm into .tools/.
emulators:
	bash localstack/install-emulators.sh $(TOOLS_DIR)

# Installs Debian's chromium and chromium-driver when they are missing (needs root or
# password-less sudo; otherwise it says so and the browser tests skip, or fail on CI).
browser:
	bash sender/console/install-chromium.sh

test: emulators test-k6 test-browser
	SALVO_TOOLS_DIR=$(TOOLS_DIR) $(GO) test -race -count=1 -timeout 20m ./...
	$(MAKE) fuzz-short

# The parsers of outside input, fuzzed for a bounded time each (FUZZTIME): campaign create
# bodies, audience files, the API's auth file, the cron expressions of recurring sends. Seeds and past failures under testdata/ run
# as plain tests in `go test` too.
FUZZTIME ?= 15s
fuzz-short:
	$(GO) test -run '^$$' -fuzz '^FuzzCampaignSpec$$' -fuzztime $(FUZZTIME) ./sender/
	$(GO) test -run '^$$' -fuzz '^FuzzParseAudience$$' -fuzztime $(FUZZTIME) ./sender/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./sender/auth/
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./sender/cron/

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
	cd $(K6_DIR) && $(GO) vet ./...
	cd sender/console/browser && $(GO) vet ./...
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

# k6 (docs/k6.md). The extension k6/x/salvo is its own module in loadgen/k6, so that k6's
# dependencies stay out of the main module. bin/k6 is k6 with the extension compiled in, built
# with plain go build (no xk6); bin/k6rig starts what a script runs against and runs it.
# K6_ARGS go to `k6 run` (e.g. K6_ARGS="-e SALVO_DURATION=30s").
k6:
	cd $(K6_DIR) && $(GO) build -o $(CURDIR)/bin/k6 ./cmd/k6 && $(GO) build -o $(CURDIR)/bin/k6rig ./cmd/k6rig

k6-push: k6
	bin/k6rig --mode push -- bin/k6 run $(K6_ARGS) $(K6_DIR)/push.js

k6-campaign: build k6 emulators
	SALVO_TOOLS_DIR=$(TOOLS_DIR) bin/k6rig --mode campaign --salvo $(BIN) -- bin/k6 run $(K6_ARGS) $(K6_DIR)/campaign.js

# The extension's tests, then both scripts briefly against the mock (exit codes 0 and 99,
# the mock's counts) and campaign.js through two API replicas in process mode.
# The console's browser tests: a module of their own (sender/console/browser), so that the
# DevTools protocol version chromedp needs stays apart from the one k6 pins.
test-browser: browser
	cd sender/console/browser && $(GO) test -race -count=1 -timeout 10m ./...

test-k6: build k6 emulators
	cd $(K6_DIR) && SALVO_K6=$(CURDIR)/bin/k6 SALVO_BIN=$(CURDIR)/$(BIN) SALVO_TOOLS_DIR=$(TOOLS_DIR) \
		$(GO) test -count=1 -timeout 10m ./...

clean:
	rm -rf bin results/latest results/ci results/gate
