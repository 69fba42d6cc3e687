#!/usr/bin/env bash
# Prints the bin directory of Node.js 24 LTS (the supported runtime), fetching it first if needed:
# the npm registry ships Node's official binaries as `node-<os>-<arch>` packages (what the `node`
# package installs through its install script, which npm no longer runs unasked), so no other
# download site is needed. Cached under $NODE24_CACHE (default ~/.cache/cerebellum/node).
set -euo pipefail
version=${NODE24_VERSION:-24.22.3}
case "$(uname -m)" in
  x86_64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) echo "node-24.sh: no Node binary package for $(uname -m)" >&2; exit 1 ;;
esac
os=$(uname -s | tr '[:upper:]' '[:lower:]')
dir=${NODE24_CACHE:-$HOME/.cache/cerebellum/node}/node-$os-$arch-$version
if ! "$dir/bin/node" --version >/dev/null 2>&1; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && npm pack --silent "node-$os-$arch@$version" >/dev/null && tar xzf ./*.tgz)
  mkdir -p "$(dirname "$dir")"
  rm -rf "$dir"
  mv "$tmp/package" "$dir"
fi
echo "$dir/bin"
