# x402-nginx — the two commands in the README are `make demo` and `make test`.
SWIFT ?= swift

.PHONY: all deps build release module test fuzz fuzz-seeds demo demo-stop vectors bench bench-micro bench-swift callgrind check-config clean

all: build

deps:
	@deploy/dev/install-deps.sh

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product x402-sidecar

## ngx_http_x402_module.so for Debian's stock nginx, built against nginx-dev (nginx/module/build/).
module: deps
	$(MAKE) -C nginx/module

## Every test layer against real Redis (and, as they land, PostgreSQL, nginx and the devnet).
test: deps
	deploy/dev/run-tests.sh

## libFuzzer on every parser that reads what others send, FUZZ_SECONDS (default 60) each, from the
## committed seeds in Fuzz/Corpus; FUZZ_TARGETS="json lease" runs some. Fails on a crash or broken invariant.
fuzz: deps
	Fuzz/run.sh $(FUZZ_TARGETS)

## Rewrites Fuzz/Corpus from the test fixtures (after `make vectors`, or when a fixture changes).
fuzz-seeds:
	python3 Fuzz/seeds.py

## Starts the sidecar on the embedded store and pays it with the official x402 Python client.
demo: deps
	deploy/demo/demo.sh

demo-stop:
	deploy/demo/demo.sh stop

## Regenerates the signed test vectors with the official x402 SDK (deterministic output).
vectors: deps
	.venv/bin/python Tests/Vectors/generate.py

## Every benchmark scenario through nginx (1 and 2 workers), each bracketed by runs of an nginx anchor
## and compared with them, the official FastAPI middleware as peer, sidecar memory, micro-benchmarks.
## About 5 minutes.
bench: deps
	$(SWIFT) build -c release --product x402-sidecar
	$(SWIFT) build -c release --product x402-micro
	.venv/bin/python Benchmarks/bench.py $(BENCH_ARGS)

## Release-mode micro-benchmarks: Keccak, EIP-712, recovery, header decoding, full verification.
bench-micro: deps
	$(SWIFT) run -c release x402-micro

## The decision path under ordo-one's benchmark (flow + answer, unpaid, replay, paid; a job's
## encoding): instructions, allocations and time per operation. Its own package: built only here.
bench-swift: deps
	cd Benchmarks/DecisionPath && $(SWIFT) package --allow-writing-to-package-directory benchmark $(BENCH_ARGS)

## Instructions per unpaid, replayed and paid decision of the release sidecar, counted by callgrind
## (stable on a noisy machine). CALLGRIND_ARGS="--sidecar OTHER/x402-sidecar" measures another build.
callgrind: deps
	$(SWIFT) build -c release --product x402-sidecar
	$(SWIFT) build -c release --product x402-micro
	.venv/bin/python Benchmarks/callgrind.py $(CALLGRIND_ARGS)

check-config: build
	$(SWIFT) run x402-sidecar check-config --config config/x402.example.yaml

clean:
	rm -rf .build .build-fuzz .run nginx/module/build
