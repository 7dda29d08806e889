# segstream: `make demo` runs the main job, `make test` runs every check. `make help` lists all.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)

.PHONY: help install demo transcript test lint unit bench profile bench-scale bench-instant bench-split bench-hosts bench-faust eval chaos fuzz clean
help:            ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP) ## create .venv and install segstream with its dev tools

demo: $(STAMP)   ## the main job: local Kafka + Redis + worker, replay CDNOW, show results
	$(BIN)/segstream demo $(ARGS)

transcript: $(STAMP) ## run the demo and rewrite the README's demo transcript with its real output (~3 min)
	$(BIN)/python -m segstream.transcript $(ARGS)

lint: $(STAMP)   ## ruff + mypy --strict + import-linter (layers segstream -> agents -> state -> streams, no cycles)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The integration tests mostly wait (on Kafka, Redis and the workers they start), so two test
# processes, each with its own Kafka + Redis, take about half the time on two cores (README,
# Quick start). TEST_WORKERS=0: everything in one process.
TEST_WORKERS ?= 2
test: lint       ## every check: lint, then unit, integration and e2e tests (starts its own Kafka + Redis)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

unit: $(STAMP)   ## pure tests only (milliseconds, no services)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal tests/unit segstream streams state

bench: $(STAMP)  ## end-to-end throughput vs pandas recompute and two consumer baselines, then live freshness (receipt -> change p50/p95/p99 at half capacity, 1 and 2 workers), then a plain producer without ticks on all of CDNOW; writes bench/results.json, bench/freshness.json, bench/no_ticks.json
	$(BIN)/python bench/run.py
	$(BIN)/python bench/freshness.py
	$(BIN)/python bench/no_ticks.py

profile: $(STAMP) ## py-spy on one worker over CDNOW master: where ingest and evaluation spend their time; writes bench/profile/
	$(BIN)/python bench/profile.py

eval: $(STAMP)   ## online models vs batch baselines (KMeans; churn and response LR/RF, churn calibration) and the alerts over a whole history, on CDNOW and The Complete Journey; writes bench/eval_*.json
	$(BIN)/python bench/eval_clusters.py
	$(BIN)/python bench/eval_churn.py
	$(BIN)/python bench/eval_alerts.py
	$(BIN)/python bench/eval_response.py
	$(BIN)/python bench/eval_quality.py
	$(BIN)/python bench/eval_cohorts.py
	$(BIN)/python bench/eval_best_time.py
	$(BIN)/python bench/eval_baskets.py
	$(BIN)/python bench/eval_bundles.py

chaos: $(STAMP)  ## long run: 2 workers, CDNOW replay while workers, Kafka and Redis are killed, then 2x overload; checks vs pandas; writes bench/chaos.json (ARGS=--quick: smoke)
	$(BIN)/python bench/chaos.py $(ARGS)

fuzz: $(STAMP)   ## 100,000 generated payloads (Hypothesis) through one worker, every outcome checked against the contract; writes bench/fuzz.json
	$(BIN)/python bench/fuzz.py $(ARGS)

bench-scale: $(STAMP) ## generated BG/NBD-like populations (10k and 100k customers, ~4 events each; 10k at ~40): ingest 1 vs 2 workers, cost of a live instant, Redis bytes and worker RSS per customer; writes bench/scale.json (ARGS="--sizes 10000 100000 1000000"; 15-20 min by default)
	$(BIN)/python bench/scale.py $(ARGS)

bench-instant: $(STAMP) ## the pure evaluator's cost of one live instant at 10k, 100k and 1M generated customers (no Kafka, no Redis); writes bench/instant_cost.json (ARGS="--sizes 10000 100000"; ~25 min with 1M)
	$(BIN)/python bench/instant_cost.py $(or $(ARGS),--sizes 10000 100000 1000000)

bench-split: $(STAMP)  ## partitioned evaluation in memory (one model owner, P = 1, 2, 4 partition evaluators) vs the one evaluator on all of CDNOW: identical changes, alerts and models, CPU per role; writes bench/split_identity.json (~4 min)
	$(BIN)/python bench/split_identity.py $(ARGS)

bench-hosts: $(STAMP)  ## CDNOW master evaluated by the one evaluator and by evaluation hosts in 1 and 2 workers (SEGSTREAM_EVALUATION_HOSTS): one tick over the whole history, seconds, and the same changes and profiles; writes bench/hosts.json
	$(BIN)/python bench/hosts.py $(ARGS)

bench-faust: $(STAMP)  ## Faust's settings (stream buffer, fetch size, poll records, commit interval, Cython) against the worker's ingest and a Faust agent doing nothing on CDNOW master, interleaved rounds, CPU per event by process; writes bench/faust_tuning.json (~8 min; ARGS=ROUNDS)
	$(BIN)/python bench/faust_tuning.py $(ARGS)

clean:           ## remove caches (keeps downloaded Kafka jars in .cache/kafka-*)
	rm -rf .pytest_cache .mypy_cache .ruff_cache .cache/demo .cache/stack .cache/worker
