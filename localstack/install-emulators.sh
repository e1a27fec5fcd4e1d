#!/usr/bin/env bash
# Installs the AWS emulators the tests use into the folder given as $1. (Filled in by the AWS
# backends work; until then there is nothing to install.)
set -euo pipefail
mkdir -p "${1:?usage: install-emulators.sh DIR}"
