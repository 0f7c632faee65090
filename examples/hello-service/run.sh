#!/usr/bin/env bash
# Starts (or restarts) hello-service detached from the worker, so it outlives the step that
# started it. Idempotent: if the wanted version already answers on $PORT, nothing happens.
#
#   APP_VERSION=1.0.0 PORT=18080 examples/hello-service/run.sh start|stop
#
# This is the stand-in for a deploy driver until the host driver lands: a `command` step.
set -euo pipefail
: "${APP_VERSION:?set APP_VERSION}"
PORT="${PORT:-18080}"
STATE="${CUTOVER_HOME:-.cutover}/hello"
BIN="${HELLO_BIN:-target/debug/hello-service}"
mkdir -p "$STATE"
pidfile="$STATE/hello-$PORT.pid"

running_version() {
  curl -fsS --max-time 1 "http://127.0.0.1:$PORT/version" 2>/dev/null | sed -n 's/.*"version":"\([^"]*\)".*/\1/p'
}

stop() {
  if [[ -f "$pidfile" ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then
    kill "$(cat "$pidfile")"
    for _ in $(seq 50); do kill -0 "$(cat "$pidfile")" 2>/dev/null || break; sleep 0.1; done
  fi
  rm -f "$pidfile"
}

case "${1:-start}" in
  start)
    if [[ "$(running_version)" == "$APP_VERSION" ]]; then
      echo "hello-service $APP_VERSION already serves on :$PORT"; exit 0
    fi
    [[ -x "$BIN" ]] || { echo "missing $BIN: run the build step first" >&2; exit 2; }
    stop
    APP_VERSION="$APP_VERSION" PORT="$PORT" setsid nohup "$BIN" >>"$STATE/hello-$PORT.log" 2>&1 </dev/null &
    echo $! >"$pidfile"
    echo "started hello-service $APP_VERSION on :$PORT (pid $!)"
    ;;
  stop) stop; echo "stopped hello-service on :$PORT" ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
