#!/usr/bin/env bash
# examples/chat/run.sh: the README's first command. On a fresh Debian 12
# machine it installs what is missing, builds chat_server and starts it in the
# foreground on the in-process PubSub (no Redis). Ctrl-C shuts it down
# gracefully. Extra arguments go to chat_server (see --help), e.g.
#   examples/chat/run.sh --port 9000 --slow-policy drop
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=$ROOT/build-chat

bash "$ROOT/cmake/install_deps.sh" \
  cmake g++ make pkg-config libasio-dev libwebsocketpp-dev libhiredis-dev rapidjson-dev libcli11-dev

cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release \
  -DWSHUB_BUILD_TESTS=OFF -DWSHUB_BUILD_BENCH=OFF -DWSHUB_BUILD_EXAMPLES=ON >/dev/null
cmake --build "$BUILD" --target chat_server -j 2

echo
echo "Starting chat_server; open the URL below in two browser tabs. Ctrl-C stops it."
exec "$BUILD/examples/chat/chat_server" "$@"
