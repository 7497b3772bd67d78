#!/bin/sh
# Runs a command inside a private D-Bus session with an unlocked gnome-keyring, as on a desktop
# where the user is signed in: the core then meets a real OS keychain (libsecret over D-Bus).
# HOME points at a throwaway folder so the test keyring never mixes with a real one.
set -e
work=$(mktemp -d "${TMPDIR:-/tmp}/clinic-keyring-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
# The session bus's own chatter (an fd limit it may not raise as root, services it activates) is
# not for the person at the terminal: its daemon runs with stderr discarded.
daemon=$(command -v dbus-daemon)
printf '#!/bin/sh\nexec %s "$@" 2>/dev/null\n' "$daemon" > "$work/dbus-daemon"
chmod +x "$work/dbus-daemon"
HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_RUNTIME_DIR="$work" \
  dbus-run-session --dbus-daemon="$work/dbus-daemon" -- sh -c 'eval "$(printf test | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null; "$@"' sh "$@"
