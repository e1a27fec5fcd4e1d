#!/usr/bin/env bash
# Creates Salvo's queues (salvo-ranges.fifo, salvo-batches), bucket (salvo) and tables
# (salvo-registry, salvo-records, salvo-ledger) in LocalStack with `salvo setup`, the same
# command that sets up a real AWS account (sender/awssetup). Safe to run again.
#
#   bash localstack/init.sh                          # LocalStack on 127.0.0.1:4566
#   ENDPOINT=http://127.0.0.1:4566 bash localstack/init.sh -bucket my-bucket
#
# Extra arguments go to `salvo setup` (run `salvo setup -h` for the flags).
set -euo pipefail
cd "$(dirname "$0")/.."

ENDPOINT="${ENDPOINT:-http://127.0.0.1:4566}"
export AWS_ACCESS_KEY_ID="${AWS_ACCESS_KEY_ID:-test}"
export AWS_SECRET_ACCESS_KEY="${AWS_SECRET_ACCESS_KEY:-test}"
export AWS_REGION="${AWS_REGION:-us-east-1}"

echo "init: waiting for LocalStack at $ENDPOINT"
for _ in $(seq 1 90); do
	if curl -fsS "$ENDPOINT/_localstack/health" >/dev/null 2>&1; then
		break
	fi
	sleep 1
done
curl -fsS "$ENDPOINT/_localstack/health" >/dev/null || {
	echo "init: LocalStack does not answer at $ENDPOINT (docker compose -f localstack/docker-compose.yml up -d)" >&2
	exit 1
}

go run ./cmd/salvo setup -aws-endpoint "$ENDPOINT" "$@"
