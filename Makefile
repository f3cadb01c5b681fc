VENV ?= .venv
PY := $(VENV)/bin/python
# tensorflow-cpu by default; `make TF_EXTRA=gpu demo` on a CUDA machine.
TF_EXTRA ?= cpu

.PHONY: demo test clean-demo

$(VENV)/.installed: setup.py
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[$(TF_EXTRA),test]"
	touch $@

demo: $(VENV)/.installed
	$(PY) -m luigi --module tasks Demo --local-scheduler --out demo_output
	@cat demo_output/DEMO.md

test: $(VENV)/.installed
	$(PY) -m pytest -q -p no:cacheprovider tests

clean-demo:
	rm -rf demo_output
