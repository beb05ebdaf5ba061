#!/usr/bin/env bash
# Installs whatever fleetheal lacks on a Debian/Ubuntu host, and nothing it already has:
#   - apt: docker.io (dockerd), nats-server, busybox-static (the test image's only binary)
#   - npm: the locked dependencies (npm ci), which also builds dist/
# With --start-docker it also starts dockerd when no engine answers on the default socket
# (for `fleetheal up` on a machine without a Docker service). With --test it also installs
# what only the test suite needs: Debian's chromium, for the dashboard's browser test, and
# Debian's docker-compose (v1), for the test of compose.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."

start_docker=0
for_tests=0
for arg in "$@"; do
  case "$arg" in
    --start-docker) start_docker=1 ;;
    --test) for_tests=1 ;;
    -h | --help)
      sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
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

missing=()
command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
command -v nats-server >/dev/null 2>&1 || missing+=(nats-server)
dpkg -s busybox-static >/dev/null 2>&1 || missing+=(busybox-static)
if [ "$for_tests" -eq 1 ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium)
  command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "install.sh: installing ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

node_major=$(node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0)
if [ "$node_major" -lt 20 ]; then
  echo "install.sh: fleetheal needs Node.js 20 or newer (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

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
