#!/bin/sh
# A shell client of sottod: prints each transcript as it arrives (gdbus
# monitor), and after COUNT of them sottod's statistics (busctl GetStats).
#
#   examples/listen.sh [COUNT] [--system]    COUNT 0 (the default): forever
#
# Needs gdbus (libglib2.0-bin) and busctl (systemd). On the session bus by
# default; --system for the system service (you must be in group sotto).
set -eu

count=${1:-0}
gdbus_bus=--session busctl_bus=--user
if [ "${2:-}" = --system ]; then gdbus_bus=--system busctl_bus=--system; fi

fifo=$(mktemp -u); mkfifo "$fifo"
trap 'rm -f "$fifo"; kill "$monitor" 2>/dev/null || true' EXIT INT TERM
gdbus monitor "$gdbus_bus" --dest org.sotto.Sotto1 --object-path /org/sotto/Sotto1 >"$fifo" &
monitor=$!

heard=0
while read -r line; do
  case $line in
    *"org.sotto.Sotto1.Transcript ("*)
      # (uint64 ID, 'TEXT', uint64 START, uint64 END, double CONF, uint32 LATENCY)
      # gdbus quotes TEXT with "…" when it holds a ' .
      echo "$line" | sed -n \
        -e "s/.*Transcript (uint64 \([0-9]*\), '\(.*\)', uint64 .*, uint32 \([0-9]*\))$/transcript \1: \2 (\3 ms)/p" \
        -e "s/.*Transcript (uint64 \([0-9]*\), \"\(.*\)\", uint64 .*, uint32 \([0-9]*\))$/transcript \1: \2 (\3 ms)/p"
      heard=$((heard + 1))
      [ "$count" -gt 0 ] && [ "$heard" -ge "$count" ] && break
      ;;
    *"org.sotto.Sotto1.Dropped ("*)
      echo "$line" | sed -n "s/.*Dropped (uint64 \([0-9]*\), '\(.*\)')$/dropped \1: \2/p"
      ;;
    "The name org.sotto.Sotto1 is owned by"*) echo "listening" ;;
    "The name org.sotto.Sotto1 does not have an owner"*) echo "waiting for sottod" ;;
  esac
done <"$fifo"

# GetStats returns a{sv}; busctl prints it as: a{sv} N "name" t VALUE ...
busctl "$busctl_bus" call org.sotto.Sotto1 /org/sotto/Sotto1 org.sotto.Sotto1 GetStats |
  tr ' ' '\n' | awk 'NR > 2 { if (n == 0) { name = $0; n = 1 } else if (n == 1) { n = 2 } else { gsub(/"/, "", name); printf "stats %s=%s\n", name, $0; n = 0 } }'
