#!/usr/bin/env bash
# Prepares a Debian 12 machine for pyxlb: system packages, kernel headers for
# BCC, bpffs, and a venv with pyxlb installed. Idempotent; silent when there
# is nothing to do. Run from the repository root (the Makefile does).
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    exec sudo -E "$0" "$@"
fi

repo=$(cd "$(dirname "$0")/.." && pwd)
venv="$repo/.venv"
kernel=$(uname -r)
say() { echo "setup: $*"; }

# BCC's Python module comes from Debian (python3-bpfcc); the PyPI package
# named "bcc" is unrelated. curl is the lab's HTTP client; haproxy is the
# reference the tests compare against; socat, tmux, hatop and
# prometheus-haproxy-exporter drive the runtime API and stats tests; nginx
# (backends) and wrk (load) serve tools/bench_lab.py. openssl makes the TLS
# tests' certificates and is their s_client.
packages=(python3-bpfcc bpfcc-tools libbpf1 iproute2 python3-venv curl haproxy
          socat tmux hatop prometheus-haproxy-exporter nginx wrk openssl)
apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        apt-get update -qq
        apt_updated=1
    fi
    say "installing $*"
    # debconf notes that apt-utils is absent on minimal images; nothing to act on.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
        2> >(grep -v "^debconf: delaying package configuration" >&2) >/dev/null
}

missing=()
for pkg in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
        || missing+=("$pkg")
done
[ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"

# BCC compiles against the running kernel's headers. Use the matching package
# where Debian has one; otherwise point /lib/modules/$kernel at the generic
# amd64 headers (fine for XDP: the program uses only stable UAPI).
if [ ! -e "/lib/modules/$kernel/build" ]; then
    if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
    if apt-cache show "linux-headers-$kernel" >/dev/null 2>&1; then
        apt_install "linux-headers-$kernel"
    else
        dpkg-query -W -f='${Status}' linux-headers-amd64 2>/dev/null \
            | grep -q "install ok installed" || apt_install linux-headers-amd64
        generic=$(ls -d /usr/src/linux-headers-*-amd64 | sort -V | tail -n 1)
        common=${generic%-amd64}-common
        mkdir -p "/lib/modules/$kernel"
        ln -sfn "$generic" "/lib/modules/$kernel/build"
        ln -sfn "$common" "/lib/modules/$kernel/source"
        say "no linux-headers-$kernel in Debian: BCC will use $(basename "$generic")" \
            "(/lib/modules/$kernel/build -> $generic)"
    fi
fi

if ! grep -qs ' /sys/fs/bpf bpf ' /proc/mounts; then
    mount -t bpf bpf /sys/fs/bpf
    say "mounted bpffs at /sys/fs/bpf"
fi

# The venv sees the system site-packages, where BCC's module lives.
if [ ! -x "$venv/bin/python" ]; then
    say "creating $venv"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
stamp="$venv/.pyxlb-installed"
want=$(sha256sum "$repo/pyproject.toml" | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing pyxlb and its test tools into $venv"
    "$venv/bin/python" -m pip install -q --disable-pip-version-check -e "$repo[test,fast]" 2>&1 \
        | { grep -v '^WARNING: Location' || true; }
    echo "$want" > "$stamp"
fi
