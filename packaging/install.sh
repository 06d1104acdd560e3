#!/bin/sh
# Installs dicom-exporter from this offline bundle: no network needed.
#   sudo ./install.sh
# A virtual environment in /opt/dicom-exporter from the wheels beside this
# script (pip --no-index), then, for systemd: the user (sysusers.d), the unit,
# /etc/default/dicom-exporter and /etc/dicom-exporter/ (existing files kept).
# PREFIX= changes the venv's place; DESTDIR= installs into a staging root and
# starts nothing (packagers, tests). PYTHON= names a CPython 3.11.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
prefix=${PREFIX:-/opt/dicom-exporter}
root=${DESTDIR:-}
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null 2>&1 || python=python3
"$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
    || { echo "install.sh: the wheels are for CPython 3.11; set PYTHON=" >&2; exit 1; }
(cd "$here" && sha256sum --quiet -c SHA256SUMS)

"$python" -m venv "$root$prefix"
"$root$prefix/bin/pip" install --quiet --disable-pip-version-check --no-index \
    --find-links "$here/wheels" prometheus-dicom-exporter
"$root$prefix/bin/dicom-exporter" --version

keep() {  # install $1 as $2 unless $2 exists (an administrator's file)
    if [ -e "$2" ]; then echo "kept $2"; else install -D -m "$3" "$1" "$2"; fi
}
install -D -m 644 "$here/systemd/dicom-exporter.conf" "$root/usr/lib/sysusers.d/dicom-exporter.conf"
install -D -m 644 "$here/systemd/dicom-exporter.service" "$root/etc/systemd/system/dicom-exporter.service"
keep "$here/systemd/dicom-exporter" "$root/etc/default/dicom-exporter" 644
keep "$here/dicom-exporter.example.yml" "$root/etc/dicom-exporter/dicom-exporter.yml" 644
if [ -z "$root" ] && command -v systemctl >/dev/null 2>&1; then
    systemd-sysusers /usr/lib/sysusers.d/dicom-exporter.conf
    systemctl daemon-reload
    echo "Edit /etc/dicom-exporter/dicom-exporter.yml, then: systemctl enable --now dicom-exporter"
fi
