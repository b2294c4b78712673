#!/bin/sh
# Installs the build into a temporary prefix, then builds and runs
# examples/embed/publish.c against it twice: with pkg-config, and with a
# small CMake project that uses find_package(apig).
#   check_install.sh SOURCE_DIR BUILD_DIR
set -eu
source_dir=$1
build_dir=$2
work=$(mktemp -d /tmp/apig-install-XXXXXX)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix

cmake --install "$build_dir" --prefix "$prefix" >/dev/null
libdir=$(dirname "$(find "$prefix" -name 'libapig.so' | head -1)")
echo "installed libapig.so into $libdir"

run_example() {
  rm -rf "$work/data"
  LD_LIBRARY_PATH=$libdir "$1" "$source_dir/examples/catalogue/petstore.json" \
    "$source_dir/examples/embed/policy.lua" "$work/data" >"$work/out.txt"
  cat "$work/out.txt"
  grep -q '^10 published, 2 failed$' "$work/out.txt"
}

echo "== pkg-config"
export PKG_CONFIG_PATH=$libdir/pkgconfig
flags=$(pkg-config --cflags --libs apig libcjson)
echo "pkg-config --cflags --libs apig: $(pkg-config --cflags --libs apig)"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Wextra -Werror "$source_dir/examples/embed/publish.c" \
  $flags -o "$work/publish-pc"
run_example "$work/publish-pc"

echo "== find_package(apig)"
mkdir -p "$work/project"
cat >"$work/project/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(embed_example C)
find_package(apig 0.1 REQUIRED)
find_package(PkgConfig REQUIRED)
pkg_check_modules(CJSON REQUIRED IMPORTED_TARGET libcjson)
add_executable(publish $source_dir/examples/embed/publish.c)
target_link_libraries(publish PRIVATE apig::apig PkgConfig::CJSON)
CMAKE
cmake -S "$work/project" -B "$work/project/build" \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/project/build" >/dev/null
run_example "$work/project/build/publish"
echo "install check passed"
