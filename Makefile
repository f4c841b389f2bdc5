# The two commands (see README.md). Each installs what it needs first.
.PHONY: run test bench

run:
	@bash scripts/run.sh

test:
	@bash scripts/test.sh

bench:
	@bash scripts/bench.sh
