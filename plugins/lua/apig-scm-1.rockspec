-- Builds the Lua module "apig" (apig.so, with libapig inside) from this
-- repository with CMake. Needs the Debian packages of scripts/deps.
--   luarocks --lua-version 5.4 make plugins/lua/apig-scm-1.rockspec
rockspec_format = "3.0"
package = "apig"
version = "scm-1"
source = {
  url = "git+file://./", -- luarocks make builds the checkout it runs in
}
description = {
  summary = "In-process API gateway: batch publish and take offline APIs",
  detailed = [[
    Opens the apig-publish gateway state in process: every call of the
    HTTP contract, the Lua policy hooks and the journal, and serving HTTP
    from the calling thread.
  ]],
}
dependencies = {
  "lua >= 5.4, < 5.5",
}
build = {
  type = "cmake",
  variables = {
    CMAKE_BUILD_TYPE = "Release",
    CMAKE_INSTALL_PREFIX = "$(PREFIX)",
    APIG_BUILD_TESTS = "OFF",
    APIG_INSTALL_LIBRARY = "OFF",
    APIG_LUA_CMOD_DIR = "$(LIBDIR)",
  },
}
