#!/usr/bin/env bash
# Prepare an offline build of the `cuda` feature and print (or set) its environment.
#
# Why: burn-cuda 0.22.1 -> cubecl-cuda 0.11.3 -> cubecl-llvm 0.11.3 (not optional) links LLVM 23.1
# statically. Its build dependency tracel-llvm-bundler 23.1.0-4 looks for an installed LLVM at
#     ${XDG_DATA_HOME:-$HOME/.local/share}/tracel/tracel-llvm-23.1.0-4
# and, unless the file `.tracel-llvm-installed` is there, downloads a bundle from github.com
# (unreachable here). Then cubecl-llvm's build.rs runs `<that dir>/bin/llvm-config --link-static
# --libs|--system-libs|--libdir|--includedir|--cxxflags` and links what it prints. llvm-sys itself
# is built with `no-llvm-linking` + `disable-alltargets-init` and never looks for LLVM
# (so LLVM_SYS_231_PREFIX does nothing).
#
# This script fills that directory from Debian's own LLVM 23.1 (`llvm-23-dev` from unstable,
# fetched with a private apt state so the system's sources, lists and libc stay untouched):
#   include/           the LLVM 23 headers
#   lib/               the static libLLVM*.a archives, a static libz.a and libzstd.a (bookworm's),
#                      and libglibc_isoc23_compat.a (see below)
#   bin/llvm-config    a small script answering the bundler's queries (Debian's own llvm-config
#                      needs glibc >= 2.38 and cannot run on bookworm)
#   .tracel-llvm-installed   the bundler's "already installed" marker
# Debian unstable builds against glibc >= 2.38, whose headers redirect strtol/sscanf & co. to
# __isoc23_* symbols that bookworm's glibc 2.36 lacks: libglibc_isoc23_compat.a forwards them to
# the classic functions. Nothing else in the archives needs a newer glibc or libstdc++.
#
# Usage:
#   source scripts/cuda-env.sh            prepare (idempotent) and export the variables
#   bash scripts/cuda-env.sh              prepare and print `export ...` lines (eval "$(...)")
#   source scripts/cuda-env.sh --check-only
#                                         no LLVM at all: exports DOCS_RS=1, which makes
#                                         tracel-llvm-bundler and cubecl-llvm skip their native
#                                         setup. Enough for `cargo check`, never for a build.
# Knobs (environment): CUDARC_CUDA_VERSION (default 13000: CUDA 13.0, driver >= 580),
#   LANDSCAPE_LLVM_SUITES (default "unstable"), LANDSCAPE_LLVM_DEB_VERSION (pin, e.g. 1:23.1.4-2),
#   LANDSCAPE_LLVM_CACHE (default ${XDG_CACHE_HOME:-$HOME/.cache}/landscape-llvm: apt state + .deb).
# Downloads on a fresh machine: ~11 MB (unstable's Packages index) + ~52 MB (llvm-23-dev) + the
# bookworm packages libzstd-dev/zlib1g-dev if missing (< 1 MB). Disk: ~420 MB prefix + ~60 MB cache.

_landscape_cuda_prepare() (
    set -euo pipefail
    local root
    root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
    log() { echo "cuda-env: $*" >&2; }

    # The bundler version fixes the LLVM version and the directory name.
    local bundler
    bundler="$(awk '$0=="name = \"tracel-llvm-bundler\"" {getline; gsub(/version = |"/, ""); print; exit}' "$root/Cargo.lock")"
    if [ -z "$bundler" ]; then
        log "tracel-llvm-bundler is not in Cargo.lock: nothing to prepare"
        return 0
    fi
    local major="${bundler%%.*}"
    local data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
    local prefix="$data_home/tracel/tracel-llvm-$bundler"
    local cache="${LANDSCAPE_LLVM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/landscape-llvm}"
    local stamp_want="debian-llvm-$major-dev ${LANDSCAPE_LLVM_DEB_VERSION:-any} layout-1"

    if [ -f "$prefix/.tracel-llvm-installed" ] && [ -x "$prefix/bin/llvm-config" ] \
        && [ -f "$prefix/.landscape-source" ] && grep -qxF "$stamp_want" "$prefix/.landscape-stamp" 2>/dev/null; then
        log "LLVM $major ready in $prefix ($(cat "$prefix/.landscape-source"))"
        return 0
    fi
    if [ -e "$prefix" ] && [ ! -f "$prefix/.landscape-stamp" ] && [ -f "$prefix/.tracel-llvm-installed" ]; then
        log "$prefix holds an LLVM this script did not make (the official bundle?): leaving it alone"
        return 0
    fi

    # Build tools and the static zlib/zstd, from the system's own (bookworm) archive.
    local need=()
    command -v cc >/dev/null && command -v c++ >/dev/null && command -v ar >/dev/null || need+=(g++ binutils)
    [ -f /usr/lib/x86_64-linux-gnu/libzstd.a ] || need+=(libzstd-dev)
    [ -f /usr/lib/x86_64-linux-gnu/libz.a ] || need+=(zlib1g-dev)
    if [ "${#need[@]}" -gt 0 ]; then
        log "apt-get install ${need[*]}"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
        fi
    fi

    # A private apt state: only this script sees Debian unstable; the system is not upgraded.
    local apt="$cache/apt"
    mkdir -p "$apt/lists/partial" "$apt/archives/partial" "$apt/conf.d" "$cache/debs"
    local suites="${LANDSCAPE_LLVM_SUITES:-unstable}" s
    : > "$apt/sources.list"
    for s in $suites; do
        echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $s main" >> "$apt/sources.list"
    done
    local aptopts=(
        -o "Dir::Etc::SourceList=$apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o "Dir::Etc::Parts=$apt/conf.d" -o Dir::Etc::Preferences=/dev/null
        -o Dir::Etc::PreferencesParts=/dev/null -o "Dir::State::Lists=$apt/lists"
        -o "Dir::Cache=$apt" -o "Dir::Cache::archives=$apt/archives" -o Dir::Cache::pkgcache=
        -o Dir::Cache::srcpkgcache= -o Acquire::Languages=none -o APT::Sandbox::User=root
    )
    local pkg="llvm-$major-dev" version deb
    version="${LANDSCAPE_LLVM_DEB_VERSION:-}"
    if [ -z "$version" ] && ls "$cache/debs/${pkg}_"*_amd64.deb >/dev/null 2>&1; then
        # Re-lay the prefix from the cached .deb, without the network.
        version="$(dpkg-deb -f "$(ls "$cache/debs/${pkg}_"*_amd64.deb | head -1)" Version)"
    fi
    if [ -z "$version" ] || [ ! -s "$cache/debs/${pkg}_${version#*:}_amd64.deb" ]; then
        log "apt-get update (private state, suites: $suites)"
        apt-get "${aptopts[@]}" update -qq >&2
        [ -n "$version" ] || version="$(apt-cache "${aptopts[@]}" policy "$pkg" | awk '/Candidate:/ {print $2}')"
        if [ -z "$version" ] || [ "$version" = "(none)" ]; then
            log "no $pkg in Debian $suites: set LANDSCAPE_LLVM_SUITES / LANDSCAPE_LLVM_DEB_VERSION"
            return 1
        fi
    fi
    deb="$cache/debs/${pkg}_${version#*:}_amd64.deb"
    if [ ! -s "$deb" ]; then
        log "downloading $pkg=$version"
        rm -f "$cache/debs/${pkg}_"*.deb
        (cd "$cache/debs" && apt-get "${aptopts[@]}" download "$pkg=$version" >&2)
        local got
        got="$(ls "$cache/debs/${pkg}_"*"${version#*:}"*.deb | head -1)"
        [ "$got" = "$deb" ] || mv "$got" "$deb"
        rm -rf "$apt/lists" "$apt/archives"   # ~30 MB of indexes, not needed again
    fi

    # Lay out the prefix next to its final place, then move it in.
    local stage="$prefix.tmp.$$" x="$prefix.x.$$"
    rm -rf "$stage" "$x"
    mkdir -p "$stage/bin" "$stage/lib" "$stage/include" "$x"
    trap 'rm -rf "$stage" "$x"' EXIT
    log "extracting $(basename "$deb")"
    dpkg-deb -x "$deb" "$x"
    cp -a "$x/usr/include/llvm-$major/llvm" "$x/usr/include/llvm-c-$major/llvm-c" "$stage/include/"
    local full
    full="$(awk '/#define LLVM_VERSION_STRING/ {gsub(/"/, "", $3); print $3}' "$stage/include/llvm/Config/llvm-config.h")"
    [ "${full%%.*}" = "$major" ] || { log "unexpected LLVM version $full"; return 1; }
    # Every static LLVM library but BOLT's (a separate tool, not an LLVM component).
    local a
    for a in "$x/usr/lib/llvm-$major/lib/"libLLVM*.a; do
        case "$(basename "$a")" in libLLVMBOLT*) continue ;; esac
        mv "$a" "$stage/lib/"
    done
    # Link order: dependents before dependencies, from the CMake exports (tsort).
    local libs
    libs="$(
        ls "$stage/lib" | sed -n 's/^lib\(LLVM.*\)\.a$/\1/p' > "$x/have"
        {
            awk '{print $1, $1}' "$x/have"
            awk '/^set_target_properties\(LLVM[A-Za-z0-9_]* PROPERTIES/ {t = substr($1, 23); next}
                 t != "" && /INTERFACE_LINK_LIBRARIES/ {
                     s = $0; sub(/^[^"]*"/, "", s); sub(/".*$/, "", s)
                     n = split(s, d, ";"); for (i = 1; i <= n; i++) print t, d[i] }
                 /^\)/ {t = ""}' "$x/usr/lib/llvm-$major/lib/cmake/llvm/LLVMExports.cmake" \
                | awk 'NR == FNR {have[$1] = 1; next} ($1 in have) && ($2 in have)' "$x/have" -
        } | tsort
    )"
    [ "$(echo "$libs" | wc -l)" = "$(wc -l < "$x/have")" ] || { log "tsort lost libraries"; return 1; }

    # glibc 2.38's C23 aliases, for objects built against newer glibc headers.
    cat > "$x/isoc23.c" <<'EOF'
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
long __isoc23_strtol(const char *s, char **e, int b) { return strtol(s, e, b); }
unsigned long __isoc23_strtoul(const char *s, char **e, int b) { return strtoul(s, e, b); }
long long __isoc23_strtoll(const char *s, char **e, int b) { return strtoll(s, e, b); }
unsigned long long __isoc23_strtoull(const char *s, char **e, int b) { return strtoull(s, e, b); }
int __isoc23_vsscanf(const char *s, const char *f, va_list ap) { return vsscanf(s, f, ap); }
int __isoc23_vfscanf(FILE *fp, const char *f, va_list ap) { return vfscanf(fp, f, ap); }
int __isoc23_vscanf(const char *f, va_list ap) { return vscanf(f, ap); }
int __isoc23_sscanf(const char *s, const char *f, ...) { va_list ap; va_start(ap, f); int r = vsscanf(s, f, ap); va_end(ap); return r; }
int __isoc23_fscanf(FILE *fp, const char *f, ...) { va_list ap; va_start(ap, f); int r = vfscanf(fp, f, ap); va_end(ap); return r; }
int __isoc23_scanf(const char *f, ...) { va_list ap; va_start(ap, f); int r = vscanf(f, ap); va_end(ap); return r; }
EOF
    cc -O2 -fPIC -c "$x/isoc23.c" -o "$x/isoc23.o"
    ar rcs "$stage/lib/libglibc_isoc23_compat.a" "$x/isoc23.o"
    # Static zlib and zstd: found in lib/ before the system's .so, so the binary does not need them.
    cp /usr/lib/x86_64-linux-gnu/libz.a /usr/lib/x86_64-linux-gnu/libzstd.a "$stage/lib/"

    # llvm-config, answering for the final prefix. The system libraries leave out what only
    # unused LLVM parts need (z3, libxml2, curl, libedit, libffi, libpfm).
    local libflags components
    libflags="$(echo "$libs" | sed 's/^/-l/' | tr '\n' ' ')-lglibc_isoc23_compat"
    components="$(echo "$libs" | sed 's/^LLVM//' | tr 'A-Z' 'a-z' | sort | tr '\n' ' ')"
    cat > "$stage/bin/llvm-config" <<EOF
#!/bin/sh
# Generated by landscape's scripts/cuda-env.sh: Debian's llvm-$major-dev $version, static only.
prefix='$prefix'
defs='-D_GNU_SOURCE -D__STDC_CONSTANT_MACROS -D__STDC_FORMAT_MACROS -D__STDC_LIMIT_MACROS'
out=''
for arg in "\$@"; do
    case "\$arg" in
        --link-static|--link-shared) ;;
        --version) out="\$out $full" ;;
        --prefix) out="\$out \$prefix" ;;
        --bindir) out="\$out \$prefix/bin" ;;
        --libdir) out="\$out \$prefix/lib" ;;
        --includedir) out="\$out \$prefix/include" ;;
        --cflags) out="\$out -I\$prefix/include \$defs" ;;
        --cppflags) out="\$out -I\$prefix/include \$defs" ;;
        --cxxflags) out="\$out -I\$prefix/include -std=c++17 -fno-exceptions -funwind-tables \$defs" ;;
        --ldflags) out="\$out -L\$prefix/lib" ;;
        --libs) out="\$out $libflags" ;;
        --libnames) out="\$out $(echo "$libs" | sed 's/^\(.*\)$/lib\1.a/' | tr '\n' ' ')" ;;
        --libfiles) out="\$out $(echo "$libs" | sed "s|^\(.*\)\$|$prefix/lib/lib\1.a|" | tr '\n' ' ')" ;;
        --system-libs) out="\$out -lrt -ldl -lm -lz -lzstd" ;;
        --shared-mode) out="\$out static" ;;
        --assertion-mode) out="\$out OFF" ;;
        --build-mode) out="\$out RelWithDebInfo" ;;
        --has-rtti) out="\$out YES" ;;
        --targets-built) out="\$out $(grep -o 'LLVM_TARGET([A-Za-z0-9]*)' "$stage/include/llvm/Config/Targets.def" | sed 's/LLVM_TARGET(\(.*\))/\1/' | tr '\n' ' ')" ;;
        --components) out="\$out $components" ;;
        --host-target) out="\$out x86_64-pc-linux-gnu" ;;
        *) echo "llvm-config (landscape stand-in): unsupported option \$arg" >&2; exit 1 ;;
    esac
done
echo \$out
EOF
    chmod +x "$stage/bin/llvm-config"
    echo "Debian $pkg $version (LLVM $full)" > "$stage/.landscape-source"
    echo "$stamp_want" > "$stage/.landscape-stamp"
    touch "$stage/.tracel-llvm-installed"
    rm -rf "$prefix"
    mkdir -p "$(dirname "$prefix")"
    mv "$stage" "$prefix"
    log "LLVM $full ready in $prefix ($(du -sh "$prefix" | cut -f1))"
)

_landscape_cuda_env() {
    local check_only=0 arg
    for arg in "$@"; do
        case "$arg" in
            --check-only) check_only=1 ;;
            -h|--help) sed -n '2,/^$/p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; return 0 ;;
            *) echo "cuda-env: unknown argument $arg" >&2; return 2 ;;
        esac
    done
    if [ "$check_only" = 1 ]; then
        echo "export DOCS_RS=1"
    else
        _landscape_cuda_prepare || return 1
        # A DOCS_RS left over from a --check-only would skip the LLVM link.
        echo "unset DOCS_RS"
    fi
    echo "export CUDARC_CUDA_VERSION=${CUDARC_CUDA_VERSION:-13000}"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: set the variables in the caller's shell.
    _landscape_cuda_out="$(_landscape_cuda_env "$@")" && eval "$_landscape_cuda_out"
    _landscape_cuda_rc=$?
    unset -v _landscape_cuda_out
    unset -f _landscape_cuda_env _landscape_cuda_prepare
    return $_landscape_cuda_rc
else
    _landscape_cuda_env "$@"
fi
