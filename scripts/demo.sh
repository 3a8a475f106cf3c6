#!/usr/bin/env bash
# sotto without a microphone: a private PulseAudio server whose null sink's
# monitor is the microphone, a private D-Bus session bus, sottod listening to
# it, `sotto listen` printing transcripts, and espeak-ng speaking into it.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=target/release
for tool in pulseaudio pactl paplay espeak-ng dbus-daemon; do
  command -v "$tool" >/dev/null || { echo "demo: $tool is missing; run make setup" >&2; exit 1; }
done
[ -x "$bin/sottod" ] || { echo "demo: $bin/sottod is missing; run make setup" >&2; exit 1; }

dir=$(mktemp -d)
pids=()
cleanup() {
  # Stop in reverse order: listener, daemon, bus, sound server.
  for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
    kill "${pids[i]}" 2>/dev/null || true
    sleep 0.2
  done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

mkdir -p "$dir/home" "$dir/runtime" "$dir/config"
cat > "$dir/default.pa" <<PA
load-module module-native-protocol-unix auth-anonymous=1 socket=$dir/native
load-module module-null-sink sink_name=vmic rate=48000 channels=1 norewinds=1
set-default-sink vmic
set-default-source vmic.monitor
PA
export HOME="$dir/home" XDG_RUNTIME_DIR="$dir/runtime" XDG_CONFIG_HOME="$dir/config"
export PULSE_SERVER="unix:$dir/native" PULSE_COOKIE="$dir/cookie" PULSE_RUNTIME_PATH="$dir/runtime"
env -u DBUS_SESSION_BUS_ADDRESS pulseaudio --daemonize=no --system=false --exit-idle-time=-1 -n \
  -F "$dir/default.pa" --use-pid-file=no --realtime=no --high-priority=no --disable-shm=yes \
  >/dev/null 2>&1 &
pids+=($!)
for _ in $(seq 100); do pactl info >/dev/null 2>&1 && break; sleep 0.1; done

bus=$(dbus-daemon --session --fork --print-address=1 --print-pid=1 --nopidfile --address="unix:path=$dir/bus")
export DBUS_SESSION_BUS_ADDRESS=$(echo "$bus" | sed -n 1p)
pids+=("$(echo "$bus" | sed -n 2p)")

echo "demo: starting sottod on the virtual microphone (vmic.monitor)"
# shellcheck disable=SC2086
"$bin/sottod" -q --device vmic.monitor ${SOTTO_ARGS:-} &
pids+=($!)
# Wait until the microphone is open (the name is taken before the model loads).
for _ in $(seq 300); do "$bin/sotto" status 2>/dev/null | grep -q '^state: listening' && break; sleep 0.1; done
"$bin/sotto" status | sed -n 1,2p

echo "demo: sotto listen prints what it hears:"
"$bin/sotto" listen > >(sed -u 's/^/  heard: /') 2>/dev/null &
pids+=($!)
sleep 0.5
for sentence in "turn on the kitchen lights" "what is the weather like tomorrow" "set a timer for ten minutes"; do
  echo "  said:  $sentence"
  espeak-ng -v en-us -w "$dir/say.wav" "$sentence"
  paplay -d vmic "$dir/say.wav"
  sleep 1.5
done
sleep 1
stats=$("$bin/sotto" status)
echo "$stats" | grep -E '^(transcripts|latency_p50_ms|latency_max_ms):'
# Speech that was not transcribed is counted, never silent.
count() { echo "$stats" | sed -n "s/^$1: //p"; }
dropped=0
for reason in deadline overload no_speech shutdown error; do
  dropped=$((dropped + $(count "dropped_$reason")))
done
echo "dropped: $dropped (deadline $(count dropped_deadline), overload $(count dropped_overload), no-speech $(count dropped_no_speech))"
if [ "$dropped" -gt 0 ]; then
  echo "demo: $dropped sentence(s) not transcribed. deadline: the machine was too busy to transcribe in time" \
       "(other programs use the CPU; give more time with SOTTO_ARGS=\"--max-latency-ms 10000\");" \
       "no-speech: the model heard no words in it."
fi
