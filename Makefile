# Berth — common tasks. `make help` lists them.
SHELL := /bin/bash
CARGO ?= cargo

.PHONY: help run build test lint fmt bench soak deps openapi sdk api-fuzz fuzz

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

run: ## Build and start Berth on the embedded SQLite default (./data)
	$(CARGO) build --bin berth
	./target/debug/berth serve

build: ## Build everything (binary, tests, benches)
	$(CARGO) build --all-targets

deps: ## Install what the tests need when it is missing
	@scripts/test-deps.sh

test: deps ## Install what is missing, start what the tests need, run every test
	scripts/with-postgres.sh $(CARGO) test --all-targets
	scripts/sdk.sh --check
	scripts/sdk-test.sh
	scripts/console-test.sh
	scripts/api-fuzz.sh

api-fuzz: deps ## Fuzz the REST API against its spec at length (500 examples, a random seed)
	API_FUZZ_EXAMPLES=$${API_FUZZ_EXAMPLES:-500} API_FUZZ_SEED=$${API_FUZZ_SEED:-$$RANDOM} \
		scripts/api-fuzz.sh

fuzz: ## Run each parser fuzz target for FUZZ_SECONDS (default 60); installs cargo-fuzz
	scripts/fuzz.sh

lint: ## Formatting and clippy, as CI runs them
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

openapi: ## Regenerate openapi/openapi.yaml from the code
	$(CARGO) run --quiet --bin berth -- openapi > openapi/openapi.yaml

sdk: ## Regenerate the Python and TypeScript SDKs from openapi/openapi.yaml
	scripts/sdk.sh

fmt: ## Format the code
	$(CARGO) fmt

bench: deps ## Run the benchmarks (release build) and print their figures
	@scripts/test-deps.sh --bench
	scripts/with-postgres.sh $(CARGO) bench

soak: deps ## Only the 5-minute soak (SOAK_SECONDS to change it): memory, descriptors, leftovers
	scripts/with-postgres.sh $(CARGO) bench --bench soak
