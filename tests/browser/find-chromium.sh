#!/usr/bin/env bash
# Finds a Chromium the browser tests can drive and prints its path on stdout (messages go to
# stderr). tests/browser/run.sh exports the result as CHROMIUM_PATH, which support.mjs reads.
#
# Looks, in order, at:
#   1. $CHROMIUM_PATH (when set it must work: a wrong explicit path is an error, not skipped);
#   2. /usr/bin/chromium ($GATEHOUSE_SYSTEM_CHROMIUM overrides this path, for testing);
#   3. chromium, chromium-browser, google-chrome-stable, google-chrome on PATH;
#   4. a copy extracted earlier into the user cache (see 5c).
# A candidate counts only if `<candidate> --version` succeeds (Ubuntu's chromium-browser is a
# stub that asks for the snap, for instance). When none works:
#   5a. as root: apt-get install chromium;
#   5b. as a user with passwordless sudo (`sudo -n true`): sudo apt-get install chromium;
#   5c. otherwise, without root: `apt-get download chromium chromium-common` and `dpkg-deb -x`
#       into ${XDG_CACHE_HOME:-$HOME/.cache}/gatehouse/chromium, used if its binary starts.
#       This needs Debian's chromium packages in the apt lists and the shared libraries
#       chromium depends on already installed; delete that directory to fetch a newer copy.
# If all of that fails it exits 1 saying what to install.
#
#   tests/browser/find-chromium.sh            prints e.g. /usr/bin/chromium
set -euo pipefail

system_chromium="${GATEHOUSE_SYSTEM_CHROMIUM:-/usr/bin/chromium}"
cache_dir="${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/gatehouse/chromium"
# Where Debian's chromium package keeps the real binary (/usr/bin/chromium is a shell wrapper
# that runs /usr/lib/chromium/chromium, so the extracted wrapper would not find it).
cached_binary="$cache_dir/root/usr/lib/chromium/chromium"

say() { echo "find-chromium: $*" >&2; }

# Succeeds when $1 is an executable that answers --version.
works() {
  local candidate="$1" version
  [ -n "$candidate" ] && [ -f "$candidate" ] && [ -x "$candidate" ] || return 1
  version="$("$candidate" --version 2>/dev/null)" || return 1
  [ -n "$version" ] || return 1
  say "using $candidate ($version)"
}

# Prints the first working Chromium among steps 2-4, or fails.
find_existing() {
  local name path
  if works "$system_chromium"; then
    echo "$system_chromium"
    return 0
  fi
  for name in chromium chromium-browser google-chrome-stable google-chrome; do
    path="$(command -v "$name" 2>/dev/null)" || continue
    if works "$path"; then
      echo "$path"
      return 0
    fi
  done
  if works "$cached_binary"; then
    echo "$cached_binary"
    return 0
  fi
  return 1
}

# apt-get install as root, or through sudo when that needs no password.
install_system() {
  local sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null || return 1
    sudo="sudo -n"
  fi
  command -v apt-get >/dev/null 2>&1 || return 1
  say "installing chromium: ${sudo:+$sudo }apt-get install chromium"
  if ! $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2; then
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get update >&2 || return 1
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium >&2 || return 1
  fi
}

# Debian's chromium packages unpacked into the user cache: no root needed, but the libraries
# chromium links against must already be installed (the packages' dependencies are not
# fetched).
install_user_local() {
  command -v apt-get >/dev/null 2>&1 && command -v dpkg-deb >/dev/null 2>&1 || return 1
  local work deb
  mkdir -p "$cache_dir" || return 1
  work="$(mktemp -d "$cache_dir/.download.XXXXXX")" || return 1
  say "no root: downloading Debian's chromium packages into $cache_dir (apt-get download)"
  if ! (cd "$work" && apt-get download chromium chromium-common >&2); then
    say "apt-get download chromium chromium-common failed (are Debian's chromium packages in the apt lists? apt-cache policy chromium)"
    rm -rf "$work"
    return 1
  fi
  mkdir -p "$work/root"
  for deb in "$work"/*.deb; do
    dpkg-deb -x "$deb" "$work/root" || { rm -rf "$work"; return 1; }
  done
  rm -f "$work"/*.deb
  local binary="$work/root/usr/lib/chromium/chromium" error missing
  if ! error="$("$binary" --version 2>&1 >/dev/null)"; then
    missing="$(ldd "$binary" 2>/dev/null | grep 'not found' || true)"
    say "the extracted chromium does not start: ${missing:-$error}"
    say "(its shared libraries come with the system package: sudo apt-get install chromium)"
    rm -rf "$work"
    return 1
  fi
  rm -rf "$cache_dir/root"
  mv "$work/root" "$cache_dir/root"
  rm -rf "$work"
  say "extracted into $cache_dir/root"
}

if [ -n "${CHROMIUM_PATH:-}" ]; then
  candidate="$CHROMIUM_PATH"
  case "$candidate" in
    */*) ;;
    *) candidate="$(command -v "$candidate" 2>/dev/null || echo "$candidate")" ;;
  esac
  if works "$candidate"; then
    echo "$candidate"
    exit 0
  fi
  say "CHROMIUM_PATH=$CHROMIUM_PATH is not a Chromium that starts (\`$CHROMIUM_PATH --version\` failed); fix it or unset it"
  exit 1
fi

if find_existing; then
  exit 0
fi

say "no Chromium found ($system_chromium, chromium, chromium-browser, google-chrome-stable, google-chrome)"
if install_system && find_existing; then
  exit 0
fi
if install_user_local && works "$cached_binary"; then
  echo "$cached_binary"
  exit 0
fi

cat >&2 <<EOF
find-chromium: no usable Chromium was found, and none could be installed. Install one:
  Debian:  sudo apt-get install chromium
  Ubuntu:  sudo apt-get install chromium-browser (Ubuntu ships it as a snap: /snap/bin/chromium),
           or google-chrome-stable from Google's apt repository
  any OS:  set CHROMIUM_PATH to a Chromium or Chrome binary, e.g.
           CHROMIUM_PATH=/usr/bin/google-chrome-stable tests/browser/run.sh
EOF
exit 1
