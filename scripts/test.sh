#!/usr/bin/env bash
# Runs the whole test suite: unit, integration and end-to-end (real kubectl against the binary).
# One debug build is shared by every test binary.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --deps-only
cargo build --locked --bin rkube
# Crate tests first (fast), then the end-to-end suite with the freshly built binary.
cargo test --locked --workspace --exclude rkube-e2e --features rkube-storage/testing
cargo test --locked -p rkube-e2e -- --test-threads=2
