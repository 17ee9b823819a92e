#!/usr/bin/env bash
# Set up everything edgeproof needs, idempotently: a second run with unchanged locks installs nothing.
#
#   scripts/setup.sh main     .venv: this project (editable) + the pipeline, test and docs extras, from requirements/pipeline.lock
#   scripts/setup.sh edge     .venv-edge: numpy<2 + tflite-runtime 2.14 + this project without extras (a Pi stand-in)
#   scripts/setup.sh litert   .venv-litert: torch + litert-torch from requirements/litert.lock (the direct PyTorch -> TFLite route)
#   scripts/setup.sh web      npm ci in web_demo/ from the committed package-lock.json
#   scripts/setup.sh browser  Debian's chromium (apt-get) when it is missing
#   scripts/setup.sh all      all of the above (what `make test` runs)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

say() { printf '[setup] %s\n' "$*"; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Run "$@" only when the stamp file does not hold the given hash; record it after success.
stamped() {
  local stamp=$1 want=$2; shift 2
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then return 0; fi
  "$@"
  echo "$want" > "$stamp"
}

check_python() {
  "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
    say "error: the locks are proven on CPython 3.11; $PYTHON is $("$PYTHON" --version 2>&1)."
    say "fix: install Python 3.11 and run PYTHON=python3.11 $0 $*"; exit 1; }
}

install_main() {
  [[ -x .venv/bin/python ]] || { say "creating .venv"; "$PYTHON" -m venv .venv; }
  say "installing the pipeline stack into .venv (requirements/pipeline.lock)"
  .venv/bin/python -m pip install -q -c requirements/pipeline.lock pip setuptools wheel
  # test: pytest, playwright, build (the wheel tier); docs: mkdocs + mkdocs-material (tests/test_docs.py, make docs)
  .venv/bin/python -m pip install -q -c requirements/pipeline.lock --no-build-isolation -e ".[pipeline,test,docs,corpus]"
}

install_edge() {
  [[ -x .venv-edge/bin/python ]] || { say "creating .venv-edge"; "$PYTHON" -m venv .venv-edge; }
  say "installing the runtime-only environment .venv-edge (requirements/edge.lock)"
  .venv-edge/bin/python -m pip install -q -r requirements/edge.lock
  # No extras: the base install must need nothing but numpy (already satisfied above).
  .venv-edge/bin/python -m pip install -q -c requirements/edge.lock -e .
}

install_litert() {
  [[ -x .venv-litert/bin/python ]] || { say "creating .venv-litert"; "$PYTHON" -m venv .venv-litert; }
  say "installing litert-torch into .venv-litert (requirements/litert.lock)"
  # No edgeproof here: convert/_litert_worker.py imports only torch, numpy and litert_torch.
  .venv-litert/bin/python -m pip install -q -r requirements/litert.lock
}

install_web() {
  command -v npm >/dev/null || { say "error: npm is missing. fix: apt-get install nodejs npm (Node 18+)"; exit 1; }
  say "npm ci in web_demo/ (package-lock.json)"
  (cd web_demo && npm ci --no-audit --no-fund --loglevel=error)
}

install_browser() {
  if command -v chromium >/dev/null; then return 0; fi
  if [[ $(id -u) -ne 0 ]]; then
    say "error: Debian's chromium is needed for the browser tests and is not installed."
    say "fix: sudo apt-get update && sudo apt-get install -y chromium   (then run this again)"
    exit 1
  fi
  say "installing Debian's chromium with apt-get"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
}

main() {
  local what=${1:-all}
  case $what in
    main) check_python "$@"; stamped .venv/.edgeproof-lock "$(hash_of requirements/pipeline.lock pyproject.toml)" install_main ;;
    edge) check_python "$@"; stamped .venv-edge/.edgeproof-lock "$(hash_of requirements/edge.lock pyproject.toml)" install_edge ;;
    litert) check_python "$@"; stamped .venv-litert/.edgeproof-lock "$(hash_of requirements/litert.lock)" install_litert ;;
    web) mkdir -p web_demo/node_modules
         stamped web_demo/node_modules/.edgeproof-lock "$(hash_of web_demo/package-lock.json)" install_web ;;
    browser) install_browser ;;
    all) main main; main edge; main litert; main web; main browser ;;
    *) say "usage: $0 [main|edge|litert|web|browser|all]"; exit 2 ;;
  esac
}
main "$@"
