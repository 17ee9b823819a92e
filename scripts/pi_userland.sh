#!/usr/bin/env bash
# A Raspberry Pi stand-in that runs the Pi's own CPU instructions: a Debian bookworm arm64 userland
# (CPython 3.11, like Raspberry Pi OS bookworm) executed by Debian's qemu-user-static on this x86
# machine, with the aarch64 wheels of numpy<2 + tflite-runtime 2.14 and of ai-edge-litert 2.3.0.
#
#   scripts/pi_userland.sh [CACHE_DIR]     (default: $EDGEPROOF_AARCH64_CACHE or ~/.cache/edgeproof/aarch64)
#
# Idempotent and cached: a second run with the same configuration only checks the stamp and prints
# the paths. The last lines of stdout are shell assignments the tests read:
#   EDGEPROOF_AARCH64_ROOT=...          the arm64 root (qemu's -L prefix; python at ROOT/usr/bin/python3.11)
#   EDGEPROOF_AARCH64_SITE_TFLITE=...   numpy 1.26.4 + tflite-runtime 2.14.0 (PYTHONPATH)
#   EDGEPROOF_AARCH64_SITE_LITERT=...   ai-edge-litert 2.3.0 and its aarch64 dependencies (PYTHONPATH)
#   EDGEPROOF_QEMU=...                  qemu-aarch64-static
#   EDGEPROOF_QEMU_CPU=cortex-a72       the CPU to emulate (-cpu): a Raspberry Pi 4's
# Run arm64 Python:  $EDGEPROOF_QEMU -cpu $EDGEPROOF_QEMU_CPU -L $ROOT $ROOT/usr/bin/python3.11 -c 'import platform; print(platform.machine())'
#
# binfmt_misc is not mounted on these machines, so arm64 binaries cannot exec by themselves and
# debootstrap's second stage cannot run. Nothing here needs that: the arm64 .debs of python3.11 and
# the libraries it links are downloaded with apt-get using a private configuration (its own
# sources.list, state and cache under CACHE_DIR; the host's apt setup is untouched) and unpacked
# with `dpkg -x`; wheels are fetched with `pip download --platform ... --only-binary=:all:` and
# unzipped. Only installing qemu-user-static (if it is missing) needs root and apt-get.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE=${1:-${EDGEPROOF_AARCH64_CACHE:-$HOME/.cache/edgeproof/aarch64}}
MIRROR=${EDGEPROOF_DEBIAN_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# python3.11 pulls libpython3.11-stdlib, libc6, libssl3, zlib1g, libffi8, ...; the wheels' native code
# needs libstdc++6 and libgcc-s1 (tflite-runtime, ai-edge-litert, numpy's bundled OpenBLAS).
DEBS="python3.11 libstdc++6 libgcc-s1"
TFLITE_WHEELS="numpy==1.26.4 tflite-runtime==2.14.0"
LITERT_WHEELS="ai-edge-litert==2.3.0 numpy==2.1.3 protobuf==5.29.6 ml_dtypes==0.6.0 flatbuffers==25.12.19 backports.strenum==1.2.8 tqdm==4.70.1 typing_extensions==4.16.0"
PLATFORMS="--platform manylinux_2_34_aarch64 --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64 --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64"
# The emulated CPU: a Raspberry Pi 4's Cortex-A72 (ARMv8.0-A: NEON, no dotprod/fp16 arithmetic, the
# lowest ISA of the 64-bit Pis), with that board's /proc/cpuinfo (see fake_cpuinfo).
QEMU_CPU=${EDGEPROOF_QEMU_CPU:-cortex-a72}
CONFIG="v2|$SUITE|$DEBS|$TFLITE_WHEELS|$LITERT_WHEELS|$QEMU_CPU"

ROOT=$CACHE/root
SITE_TFLITE=$CACHE/site-tflite
SITE_LITERT=$CACHE/site-litert
STAMP=$CACHE/.complete

say() { printf '[pi-userland] %s\n' "$*" >&2; }
emit() {
  echo "EDGEPROOF_AARCH64_ROOT=$ROOT"
  echo "EDGEPROOF_AARCH64_SITE_TFLITE=$SITE_TFLITE"
  echo "EDGEPROOF_AARCH64_SITE_LITERT=$SITE_LITERT"
  echo "EDGEPROOF_QEMU=$(command -v qemu-aarch64-static)"
  echo "EDGEPROOF_QEMU_CPU=$QEMU_CPU"
}

need_qemu() {
  command -v qemu-aarch64-static >/dev/null && return 0
  if [[ $(id -u) -ne 0 ]]; then
    say "error: qemu-aarch64-static is missing. fix: sudo apt-get install -y qemu-user-static   (then run this again)"
    exit 1
  fi
  say "installing Debian's qemu-user-static with apt-get"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user-static >/dev/null
  fi
}

pick_pip() {
  if [[ -x .venv/bin/python ]]; then echo .venv/bin/python; else echo "${PYTHON:-python3}"; fi
}

# apt-get with a private arm64 configuration under $CACHE/apt (the host's apt is left alone).
apt_arm64() {
  local a=$CACHE/apt
  apt-get -q -o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
    -o Dir::State="$a/state" -o Dir::State::status="$a/state/status" -o Dir::Cache="$a/cache" \
    -o Dir::Etc::SourceList="$a/sources.list" -o Dir::Etc::SourceParts="$a/sources.list.d" \
    -o Dir::Etc::Preferences="$a/preferences" -o Dir::Etc::PreferencesParts="$a/preferences.d" \
    -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

fetch_debs() {
  local a=$CACHE/apt
  mkdir -p "$a/state/lists/partial" "$a/cache/archives/partial" "$a/sources.list.d" "$a/preferences.d"
  : > "$a/state/status"; : > "$a/preferences"
  echo "deb [arch=arm64 signed-by=$KEYRING] $MIRROR $SUITE main" > "$a/sources.list"
  say "apt-get update (arm64 package lists for $SUITE)"
  apt_arm64 update -qq >&2
  say "downloading arm64 .debs: $DEBS and their dependencies"
  apt_arm64 install -y -qq --download-only --no-install-recommends $DEBS >&2
}

unpack_root() {
  local tmp=$CACHE/.root.new
  rm -rf "$tmp"; mkdir -p "$tmp"
  for deb in "$CACHE"/apt/cache/archives/*.deb; do dpkg -x "$deb" "$tmp"; done
  # bookworm's packages still ship /lib and /usr/lib separately (usrmerge happens at install time):
  # the loader and libc live in /lib, python in /usr; qemu's -L prefix resolves both.
  rm -rf "$ROOT"; mv "$tmp" "$ROOT"
}

# qemu-user 7.2 hands the guest the HOST's /proc/cpuinfo (x86 text): ai-edge-litert 2.3.0's CPU
# detection then segfaults in Interpreter() (measured; tflite-runtime 2.14 survives it). qemu's -L
# prefix also redirects /proc/cpuinfo, so the root gets a Raspberry Pi 4 Model B's own file
# (4 x Cortex-A72, part 0xd08), which matches the emulated -cpu cortex-a72.
fake_cpuinfo() {
  mkdir -p "$ROOT/proc"
  local i
  for i in 0 1 2 3; do
    printf 'processor\t: %d\nBogoMIPS\t: 108.00\nFeatures\t: fp asimd evtstrm crc32 cpuid\nCPU implementer\t: 0x41\nCPU architecture: 8\nCPU variant\t: 0x0\nCPU part\t: 0xd08\nCPU revision\t: 3\n\n' "$i"
  done > "$ROOT/proc/cpuinfo"
  printf 'Hardware\t: BCM2835\nRevision\t: c03111\nModel\t\t: Raspberry Pi 4 Model B Rev 1.1\n' >> "$ROOT/proc/cpuinfo"
}

fetch_wheels() {  # fetch_wheels DEST_SITE WHEEL_SPECS...
  local site=$1; shift
  local wheels=$CACHE/wheels/$(basename "$site") py
  py=$(pick_pip)
  mkdir -p "$wheels"
  say "pip download (aarch64, cp311): $*"
  "$py" -m pip download -q --only-binary=:all: --no-deps --python-version 3.11 --implementation cp --abi cp311 \
    $PLATFORMS --platform any -d "$wheels" "$@" >&2
  rm -rf "$site.new"; mkdir -p "$site.new"
  for whl in "$wheels"/*.whl; do "$py" -m zipfile -e "$whl" "$site.new"; done
  rm -rf "$site"; mv "$site.new" "$site"
}

smoke() {  # smoke SITE MODULE: the arm64 python imports numpy and the interpreter module
  PYTHONPATH=$1 qemu-aarch64-static -cpu "$QEMU_CPU" -L "$ROOT" "$ROOT/usr/bin/python3.11" -c \
    "import platform, numpy, $2; assert platform.machine() == 'aarch64', platform.machine(); print(platform.machine(), 'numpy', numpy.__version__, '$2 ok')" >&2
}

main() {
  mkdir -p "$CACHE"
  need_qemu
  if [[ -f $STAMP && $(cat "$STAMP") == "$CONFIG" && -x $ROOT/usr/bin/python3.11 ]]; then
    emit; return 0
  fi
  local start=$SECONDS
  rm -f "$STAMP"
  fetch_debs
  unpack_root
  fake_cpuinfo
  fetch_wheels "$SITE_TFLITE" $TFLITE_WHEELS
  fetch_wheels "$SITE_LITERT" $LITERT_WHEELS
  smoke "$SITE_TFLITE" tflite_runtime.interpreter
  smoke "$SITE_LITERT" ai_edge_litert.interpreter
  echo "$CONFIG" > "$STAMP"
  say "built in $((SECONDS - start)) s: $(du -sh "$CACHE" | cut -f1) under $CACHE"
  emit
}
main "$@"
