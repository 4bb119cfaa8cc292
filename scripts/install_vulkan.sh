#!/usr/bin/env bash
# Install a Vulkan device that SAPIEN (ManiSkill3) accepts on Debian 12: Mesa 25's lavapipe from
# bookworm-backports. Debian 12's own Mesa 22.3 lavapipe is refused by SAPIEN ("Failed to find a
# supported physical device").
#
# The backports source is derived from the machine's existing Debian apt source (its mirror URI
# and keyring), so no registry host is written here. Needs root. Idempotent.
set -euo pipefail

if [ "$(id -u)" != "0" ]; then
    echo "install_vulkan.sh: run as root (it calls apt-get)" >&2
    exit 1
fi
codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-}")"
if [ "$codename" != "bookworm" ]; then
    # Newer Debian releases ship Mesa >= 25 in their main suite.
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 vulkan-tools
    exit 0
fi

target=/etc/apt/sources.list.d/robovlm-bookworm-backports.sources
if [ ! -f "$target" ]; then
    uri=""
    keyring=""
    # deb822 files first (Debian 12 default), then one-line sources.list entries.
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        block_uri="$(awk '
            /^URIs:/ {u=$2}
            /^Suites:/ && $0 ~ /(^|[ \t])bookworm([ \t]|$)/ {found=1}
            /^$/ {if (found && u != "") {print u; done=1; exit} ; u=""; found=0}
            END {if (!done && found && u != "") print u}' "$f")"
        if [ -n "$block_uri" ]; then
            uri="$block_uri"
            keyring="$(awk '/^Signed-By:/ {print $2; exit}' "$f")"
            break
        fi
    done
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri="$(awk '$1 == "deb" && $3 == "bookworm" {print $2; exit}' /etc/apt/sources.list)"
    fi
    if [ -z "$uri" ]; then
        echo "install_vulkan.sh: no Debian bookworm apt source found to derive bookworm-backports from" >&2
        exit 1
    fi
    {
        echo "Types: deb"
        echo "URIs: $uri"
        echo "Suites: bookworm-backports"
        echo "Components: main"
        [ -n "$keyring" ] && echo "Signed-By: $keyring"
    } > "$target"
    echo "install_vulkan.sh: added bookworm-backports from $uri"
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq vulkan-tools || true
