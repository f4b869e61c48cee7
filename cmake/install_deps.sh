#!/usr/bin/env bash
# cmake/install_deps.sh PACKAGE...: install the Debian packages of the list
# that are missing (apt-get update only when something is). Used by the two
# README commands, tests/run.sh and examples/chat/run.sh. As root, or through
# sudo otherwise. On a system without dpkg it only says what is needed.
set -euo pipefail

# have <package>: the package, or what the scripts need from it, is installed.
have() {
  # NodeSource's nodejs bundles npm and conflicts with Debian's npm package.
  if [ "$1" = npm ] && command -v npm >/dev/null 2>&1; then
    return 0
  fi
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "no dpkg-query: not Debian; make sure these (or their equivalents) are installed: $*"
  exit 0
fi
missing=()
for package in "$@"; do
  have "$package" || missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
  echo "all $# packages present"
  exit 0
fi
echo "installing: ${missing[*]}"
as_root=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "not root and no sudo: install ${missing[*]} first" >&2; exit 1; }
  as_root=(sudo)
fi
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
