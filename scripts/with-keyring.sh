#!/bin/sh
# Runs a command inside a private D-Bus session with an unlocked gnome-keyring, as on a desktop
# where the user is signed in: the core then meets a real OS keychain (libsecret over D-Bus).
# HOME points at a throwaway folder so the test keyring never mixes with a real one.
set -e
work=$(mktemp -d "${TMPDIR:-/tmp}/clinic-keyring-XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/home"
HOME="$work/home" XDG_DATA_HOME="$work/home/.local/share" XDG_RUNTIME_DIR="$work" \
  dbus-run-session -- sh -c 'eval "$(printf test | gnome-keyring-daemon --unlock --components=secrets)" >/dev/null; "$@"' sh "$@"
