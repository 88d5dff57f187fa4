#!/bin/sh
# Unpack the ftscale bundle @BUNDLE@ on an offline x86-64 Linux host and set it up.
#
#     sh unpack.sh [DIR]        DIR: where the tree goes (default: ./@TREE@)
#
# Every part found next to this script is checked against its sha256 and unpacked into one tree;
# a part already unpacked there is skipped, so this can run again as more parts arrive. It needs
# sh, tar, xz and sha256sum, nothing else: then the bundled interpreter checks that every
# interpreter runs from where it was unpacked and makes the environments from the bundled wheels
# (no package index, no network, no compiler).
set -eu

glibc_needed=@GLIBC@
orchestrator=@ORCHESTRATOR@
# file sha256 bytes required|optional what
parts='@PARTS@'

case $0 in */*) here=${0%/*} ;; *) here=. ;; esac
target=${1:-@TREE@}
fail() {
    echo "unpack.sh: error: $*" >&2
    exit 1
}
for tool in tar xz sha256sum; do
    command -v "$tool" >/dev/null 2>&1 || fail "needs $tool on PATH"
done
if have=$(getconf GNU_LIBC_VERSION 2>/dev/null); then
    have=${have#glibc }
    have_minor=${have#*.}
    need_minor=${glibc_needed#*.}
    if [ "${have%%.*}" -lt "${glibc_needed%%.*}" ] ||
        { [ "${have%%.*}" -eq "${glibc_needed%%.*}" ] && [ "${have_minor%%.*}" -lt "$need_minor" ]; }; then
        fail "this host has glibc $have; the bundle needs glibc $glibc_needed or newer"
    fi
fi

mkdir -p "$target/.unpacked"
while read -r file sum size need what; do
    [ -n "$file" ] || continue
    if [ ! -f "$here/$file" ]; then
        [ "$need" = required ] && fail "$file is missing ($what); put it next to unpack.sh"
        echo "$file: not here, skipped ($what)"
        continue
    fi
    done_sum=
    [ -f "$target/.unpacked/$file" ] && read -r done_sum <"$target/.unpacked/$file"
    if [ "$done_sum" = "$sum" ]; then
        echo "$file: already unpacked"
        continue
    fi
    # shellcheck disable=SC2046
    set -- $(sha256sum "$here/$file")
    [ "$1" = "$sum" ] || fail "$file: sha256 $1, expected $sum (damaged or incomplete: $size bytes expected)"
    tar -xJf "$here/$file" -C "$target" || fail "$file: tar could not unpack it"
    echo "$sum" >"$target/.unpacked/$file"
    echo "$file: sha256 checked, unpacked ($what)"
done <<PARTS
$parts
PARTS

exec "$target/$orchestrator" -I "$target/host.py" setup
