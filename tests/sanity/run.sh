#!/usr/bin/env bash
# ansible-test needs the collection at .../ansible_collections/roce/multirail:
# copy the tracked files (and new ones not ignored) there and run sanity with the
# interpreter of .venv/sanity (made by `make venv`), which holds the tests' requirements.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
dest="$work/ansible_collections/roce/multirail"
mkdir -p "$dest"
cd "$repo"
# The pip version ansible-test bootstraps (python_requirements.get_venv_packages).
pip_version="$(grep -ho "pip='[0-9.]*'" .venv/sanity/lib/python3*/site-packages/ansible_test/_internal/python_requirements.py | head -1 | tr -dc '0-9.')"
mkdir -p ~/.ansible/test/cache
cp tests/sanity/get_pip.py ~/.ansible/test/cache/"get_pip_${pip_version//./_}.py"
git ls-files -z --cached --others --exclude-standard | xargs -0 -I{} cp --parents {} "$dest"/ 2>/dev/null || true
cd "$dest"
git init -q . && git add -A >/dev/null
"$repo/.venv/sanity/bin/ansible-test" sanity --local --requirements \
    --python "$("$repo/.venv/sanity/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')" "$@"
