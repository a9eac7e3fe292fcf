#!/bin/bash
# setup.sh — install what pcsctap needs on Debian 12 and build it.
# Idempotent: installs only missing packages, reuses the build directory.
# Sourced by tools/demo.sh and tools/test.sh; runs standalone too.
set -eu

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${PCSCTAP_BUILD:-$top/build}

packages=(
	# build
	gcc pkg-config meson ninja-build libpcsclite-dev libsqlite3-dev libpcap-dev
	libcriterion-dev clang libclang-rt-14-dev valgrind
	# the PC/SC stack and the real clients the tests drive
	pcscd vsmartcard-vpcd vsmartcard-vpicc pcsc-tools opensc iproute2
	python3-pyscard python3-pycryptodome openjdk-17-jdk-headless scdaemon
	# reading traces and exports
	sqlite3 tshark
)

missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || { echo "setup: run as root to install: ${missing[*]}" >&2; exit 1; }
	echo "setup: installing ${missing[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$top" --werror >/dev/null
fi
meson compile -C "$build" >/dev/null
