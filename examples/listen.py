#!/usr/bin/python3
"""A Python client of sottod: prints each transcript as it arrives, and after
COUNT of them sottod's statistics (GetStats).

    /usr/bin/python3 examples/listen.py [COUNT] [--system]   COUNT 0: forever

Uses GLib's D-Bus (GDBus) through PyGObject: Debian/Ubuntu package
python3-gi. On the session bus by default; --system for the system service
(you must be in group sotto).
"""

import sys

import gi

gi.require_version("Gio", "2.0")
from gi.repository import Gio, GLib  # noqa: E402

NAME, PATH, IFACE = "org.sotto.Sotto1", "/org/sotto/Sotto1", "org.sotto.Sotto1"


def main():
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    bus_type = Gio.BusType.SYSTEM if "--system" in sys.argv else Gio.BusType.SESSION
    bus = Gio.bus_get_sync(bus_type, None)
    loop = GLib.MainLoop()
    heard = 0

    def on_signal(_conn, _sender, _path, _iface, member, args):
        nonlocal heard
        if member == "Transcript":
            # Transcript(t id, s text, t start_ms, t end_ms, d confidence, u latency_ms)
            ident, text, _start, _end, _confidence, latency = args.unpack()
            print(f"transcript {ident}: {text} ({latency} ms)", flush=True)
            heard += 1
            if count and heard >= count:
                loop.quit()
        elif member == "Dropped":
            ident, reason = args.unpack()
            print(f"dropped {ident}: {reason}", flush=True)

    # Subscribe before anything else, so no transcript is missed.
    bus.signal_subscribe(NAME, IFACE, None, PATH, None, Gio.DBusSignalFlags.NONE, on_signal)
    print("listening", flush=True)
    try:
        loop.run()
    except KeyboardInterrupt:
        return 0

    reply = bus.call_sync(
        NAME, PATH, IFACE, "GetStats", None, GLib.VariantType("(a{sv})"),
        Gio.DBusCallFlags.NONE, 5000, None,
    )
    (stats,) = reply.unpack()
    for key in sorted(stats):
        print(f"stats {key}={stats[key]}", flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except GLib.Error as e:
        # One line, the problem and the fix.
        print(f"listen.py: error: {e.message} (is sottod running on this bus?)", file=sys.stderr)
        sys.exit(1)
