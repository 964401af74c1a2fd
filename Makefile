# Shortcuts for the README's commands (tasks.py needs nothing but Python).
.PHONY: run test bench

run:
	python3 tasks.py run

test:
	python3 tasks.py test

bench:
	python3 tasks.py bench
