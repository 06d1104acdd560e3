#!/bin/sh
# Installs, upgrades, rolls back or removes dicom-exporter from this offline
# bundle: no network needed. docs/operations.md is the whole procedure.
#   sudo ./install.sh              install, or upgrade the installed version
#   sudo ./install.sh --rollback   back to the version before the last upgrade
#   sudo ./install.sh --uninstall  remove the program; config, state and user stay
#
# Each version gets its own virtual environment in PREFIX/versions/ (from the
# wheels beside this script, pip --no-index); PREFIX/current points at the
# running one, PREFIX/previous at the one before. An upgrade builds the new
# venv beside the old, runs the new version's check-config on the existing
# config (refused, nothing changed, if it fails), switches `current` in one
# rename, then restarts the service if it runs. /etc/dicom-exporter/ and
# /etc/default/dicom-exporter are the administrator's: never overwritten.
# The monitoring pack generated for the example config is in
# /usr/share/dicom-exporter/monitoring; nothing under /etc/prometheus is touched.
#
# PREFIX= (default /opt/dicom-exporter) the programs' place; BINDIR= (default
# /usr/local/bin) where `dicom-exporter` goes on PATH; DESTDIR= installs into
# a staging root and starts nothing, creates no user (packagers, tests);
# PYTHON= names a CPython 3.11.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-/opt/dicom-exporter}
bindir=${BINDIR:-/usr/local/bin}
root=${DESTDIR:-}
python=${PYTHON:-python3.11}
name=dicom-exporter
unit=/etc/systemd/system/$name.service

die() { echo "install.sh: $*" >&2; exit 1; }
usage() { sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; }

action=install
case "${1:-}" in
    "") ;;
    --rollback) action=rollback ;;
    --uninstall) action=uninstall ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
esac
[ $# -le 1 ] || { usage >&2; exit 2; }

# systemd as PID 1 (not merely installed): containers, chroots and image
# builds have systemctl but no running systemd.
systemd_runs() { [ -z "$root" ] && [ -d /run/systemd/system ]; }

base=$root$prefix
[ -z "$root" ] && [ "$(id -u)" != 0 ] && die "run as root (sudo $0), or set DESTDIR= to stage"

# The value of NAME= in /etc/default/dicom-exporter (quotes removed).
default_value() {
    [ -f "$root/etc/default/$name" ] || return 0
    sed -n "s/^$1=//p" "$root/etc/default/$name" | tail -n 1 | tr -d "\"'"
}

# Runs VENV's check-config on the config (and web config) the service uses;
# prints the checker's lines and fails if it rejects them.
check_with() {
    config=$(default_value CONFIG)
    [ -n "$config" ] || config=/etc/$name/$name.yml
    [ -f "$root$config" ] || return 0
    web=$(default_value ARGS | sed -n 's/.*--web\.config\.file[= ]\([^ ]*\).*/\1/p')
    if [ -n "$web" ]; then
        "$1/bin/$name" check-config --config.file "$root$config" --web.config.file "$root$web"
    else
        "$1/bin/$name" check-config --config.file "$root$config"
    fi
}

version_of() { cat "$1/bundle-version" 2>/dev/null || echo unknown; }

# Points LINK at TARGET (relative to LINK's folder) in one rename(2).
switch_link() {
    ln -sfn "$2" "$1.new"
    mv -T "$1.new" "$1"
}

# An administrator's file: installed when missing; replaced when it is still
# what the previous version shipped; else kept, the new one beside it as .new.
conffile() {  # conffile NEW DEST OLD_SHIPPED
    if [ ! -e "$2" ]; then
        install -D -m 644 "$1" "$2"
    elif cmp -s "$1" "$2"; then
        :
    elif [ -n "$3" ] && [ -f "$3" ] && cmp -s "$3" "$2"; then
        install -m 644 "$1" "$2"
        echo "updated ${2#"$root"}"
    else
        install -m 644 "$1" "$2.new"
        echo "kept ${2#"$root"} (edited here); this version's is beside it: ${2#"$root"}.new"
    fi
}

# The files outside PREFIX, from the version in VENV (shipped in its wheel),
# against what the version in OLD shipped.
place_files() {  # place_files VENV OLD
    new_share=$1/share/prometheus-$name
    old_share=${2:+$2/share/prometheus-$name}
    install -D -m 644 "$new_share/$name.conf" "$root/usr/lib/sysusers.d/$name.conf"
    conffile "$new_share/$name.service" "$root$unit" "${old_share:+$old_share/$name.service}"
    conffile "$new_share/$name" "$root/etc/default/$name" "${old_share:+$old_share/$name}"
    if [ ! -e "$root/etc/$name/$name.yml" ]; then
        install -D -m 644 "$here/$name.example.yml" "$root/etc/$name/$name.yml"
        echo "installed the example config as /etc/$name/$name.yml: edit it"
    fi
    ln -sfn current/bin "$base/bin"
    ln -sfn current/share "$base/share"
    # /usr/share/dicom-exporter/monitoring: the current version's monitoring pack.
    if [ -d "$root/usr/share/$name" ] && [ ! -L "$root/usr/share/$name" ]; then
        echo "kept $root/usr/share/$name (not ours); the monitoring pack is in $prefix/share/$name"
    else
        mkdir -p "$root/usr/share"
        ln -sfn "$(realpath -s --relative-to="$root/usr/share" "$base/share/$name")" "$root/usr/share/$name"
    fi
    mkdir -p "$root$bindir"
    # Relative (and computed without following links) so that it works in a
    # DESTDIR too, and keeps following `current` through upgrades.
    ln -sfn "$(realpath -s --relative-to="$root$bindir" "$base/bin/$name")" "$root$bindir/$name"
}

create_user() {
    getent passwd "$name" >/dev/null && return 0
    if command -v systemd-sysusers >/dev/null 2>&1; then
        systemd-sysusers "/usr/lib/sysusers.d/$name.conf"
    else
        useradd --system --user-group --no-create-home --home-dir / \
            --shell /usr/sbin/nologin "$name"
    fi
}

# After a switch: restart a running service, else say how to start.
start_or_tell() {
    if systemd_runs; then
        create_user
        systemctl daemon-reload
        if systemctl is-active --quiet "$name"; then
            systemctl restart "$name"
            echo "restarted $name"
        else
            echo "edit /etc/$name/$name.yml, then: systemctl enable --now $name"
        fi
        return
    fi
    if [ -n "$root" ]; then
        echo "staged in $root: no user created, nothing started"
    else
        create_user
        echo "systemd is not running here (no /run/systemd/system): everything is installed, nothing started"
    fi
    echo "start by hand: runuser -u $name -- $prefix/bin/$name serve --config.file=/etc/$name/$name.yml"
    echo "or, where systemd runs: systemctl enable --now $name"
}

rollback() {
    [ -L "$base/previous" ] || die "no previous version in $prefix to roll back to"
    now=$(readlink "$base/current")
    before=$(readlink "$base/previous")
    check_with "$base/$before" \
        || die "dicom-exporter $(version_of "$base/$before") rejects the config above; nothing changed"
    switch_link "$base/current" "$before"
    switch_link "$base/previous" "$now"
    place_files "$base/$before" "$base/$now"
    echo "rolled back to dicom-exporter $(version_of "$base/$before") (from $(version_of "$base/$now"); --rollback again returns)"
    start_or_tell
}

uninstall() {
    [ -L "$base/current" ] || die "nothing installed in $prefix by this installer"
    if systemd_runs; then
        systemctl disable --now "$name" 2>/dev/null || true
    fi
    rm -f "$root$unit" "$root$unit.new" "$root/usr/lib/sysusers.d/$name.conf"
    case "$(readlink "$root$bindir/$name" 2>/dev/null)" in
        *"${prefix#/}/bin/$name") rm -f "$root$bindir/$name" ;;
    esac
    case "$(readlink "$root/usr/share/$name" 2>/dev/null)" in
        *"${prefix#/}/share/$name") rm -f "$root/usr/share/$name" ;;
    esac
    rm -rf "$base"
    if systemd_runs; then systemctl daemon-reload; fi
    echo "removed dicom-exporter from $prefix; kept /etc/$name/, /etc/default/$name, /var/lib/$name and the user $name"
}

# Prerequisites, each one clear line.
prerequisites() {
    command -v "$python" >/dev/null 2>&1 || python=python3
    command -v "$python" >/dev/null 2>&1 \
        || die "needs CPython 3.11 (Debian 12: apt install python3.11); none found, set PYTHON="
    "$python" -c 'import sys; sys.exit(sys.implementation.name != "cpython" or sys.version_info[:2] != (3, 11))' \
        || die "needs CPython 3.11, $python is $("$python" -V 2>&1); set PYTHON= to one"
    "$python" -c 'import venv, ensurepip' 2>/dev/null \
        || die "needs Python's venv with ensurepip (Debian 12: apt install python3.11-venv)"
    command -v sha256sum >/dev/null 2>&1 || die "needs sha256sum (coreutils)"
    (cd "$here" && sha256sum --quiet --strict -c SHA256SUMS) \
        || die "the bundle is damaged: a file differs from SHA256SUMS (above)"
    if [ -e "$base" ] && [ ! -L "$base/current" ] && [ -n "$(ls -A "$base")" ]; then
        die "$prefix holds an install by an older install.sh: remove it (rm -rf $prefix; /etc is kept) and run again"
    fi
    return 0
}

install_version() {
    version=$(cat "$here/VERSION")
    old=""
    if [ -L "$base/current" ]; then
        old=$(readlink "$base/current")
        if [ "$(version_of "$base/$old")" = "$version" ]; then
            echo "dicom-exporter $version is installed already"
            place_files "$base/$old" "$base/$old"
            start_or_tell
            return
        fi
    fi
    mkdir -p "$base/versions"
    new=$(mktemp -d "$base/versions/$version.XXXXXX")
    chmod 755 "$new"
    trap 'rm -rf "$new"' EXIT
    "$python" -m venv "$new"
    "$new/bin/pip" install --quiet --disable-pip-version-check --no-index \
        --find-links "$here/wheels" "prometheus-dicom-exporter==$version"
    echo "$version" > "$new/bundle-version"
    if [ -d "$here/monitoring" ]; then  # the pack generated for the example config
        mkdir -p "$new/share/$name"
        cp -R "$here/monitoring" "$new/share/$name/monitoring"
    fi
    "$new/bin/$name" --version >/dev/null
    if [ -n "$old" ]; then
        check_with "$new" || die "dicom-exporter $version rejects the config above; nothing changed, $(version_of "$base/$old") stays installed (and running)"
    fi
    switch_link "$base/current" "versions/${new##*/}"
    trap - EXIT
    if [ -n "$old" ]; then
        switch_link "$base/previous" "$old"
    fi
    for each in "$base"/versions/*; do  # only the current and the previous stay
        case "versions/${each##*/}" in
            "$(readlink "$base/current")"|"$(readlink "$base/previous" 2>/dev/null)") ;;
            *) rm -rf "$each" ;;
        esac
    done
    place_files "$new" "${old:+$base/$old}"
    if [ -n "$old" ]; then
        echo "upgraded dicom-exporter $(version_of "$base/$old") to $version (install.sh --rollback returns)"
    else
        echo "installed dicom-exporter $version in $prefix"
    fi
    start_or_tell
}

case "$action" in
    install) prerequisites; install_version ;;
    rollback) rollback ;;
    uninstall) uninstall ;;
esac
