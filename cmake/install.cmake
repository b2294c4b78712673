# The shared library libapig.so and its install rules: library, headers,
# pkg-config file and CMake package, all relocatable, so
# `cmake --install BUILD --prefix DIR` works for any DIR.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(APIG_HELPERS_INSTALL_DIR ${CMAKE_INSTALL_DATADIR}/apig/lua)

add_library(apig_shared SHARED ${APIG_CORE_SOURCES}
  $<TARGET_OBJECTS:llhttp_objects>)
add_library(apig::apig ALIAS apig_shared)
# Only the functions apig.h marks APIG_API are exported.
set_target_properties(apig_shared PROPERTIES
  OUTPUT_NAME apig
  EXPORT_NAME apig
  VERSION ${PROJECT_VERSION}
  SOVERSION ${PROJECT_VERSION_MAJOR}
  C_VISIBILITY_PRESET hidden
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/shared)
target_compile_options(apig_shared PRIVATE ${APIG_WARNINGS})
target_compile_definitions(apig_shared PRIVATE
  APIG_LUA_HELPERS_DIR="${CMAKE_INSTALL_FULL_DATADIR}/apig/lua")
target_include_directories(apig_shared
  PUBLIC $<BUILD_INTERFACE:${CMAKE_SOURCE_DIR}/core/include>
         $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  PRIVATE ${CMAKE_SOURCE_DIR}/core/src ${LLHTTP_INCLUDE_DIR}
          ${UTHASH_INCLUDE_DIR})
target_link_libraries(apig_shared PRIVATE PkgConfig::LIBUV PkgConfig::CJSON
  PkgConfig::LUA PkgConfig::YAML OpenSSL::Crypto ZLIB::ZLIB m)

# The Lua rock installs only apig.so and turns this off.
option(APIG_INSTALL_LIBRARY "Install libapig, its headers and packages" ON)
if(NOT APIG_INSTALL_LIBRARY)
  return()
endif()

install(TARGETS apig_shared EXPORT apigTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${CMAKE_SOURCE_DIR}/core/include/apig.h
              ${CMAKE_SOURCE_DIR}/core/include/apig_errors.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY ${CMAKE_SOURCE_DIR}/lua/
  DESTINATION ${APIG_HELPERS_INSTALL_DIR} FILES_MATCHING PATTERN "*.lua")

# pkg-config: the prefix is found from the .pc file's own folder.
set(APIG_PC_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH APIG_PC_TO_PREFIX /root/${APIG_PC_DIR} /root)
string(REGEX REPLACE "/$" "" APIG_PC_TO_PREFIX "${APIG_PC_TO_PREFIX}")
configure_file(${CMAKE_SOURCE_DIR}/cmake/apig.pc.in
  ${CMAKE_BINARY_DIR}/apig.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/apig.pc DESTINATION ${APIG_PC_DIR})

set(APIG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/apig)
install(EXPORT apigTargets NAMESPACE apig:: DESTINATION ${APIG_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/apigConfig.cmake.in
  ${CMAKE_BINARY_DIR}/apigConfig.cmake INSTALL_DESTINATION ${APIG_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/apigConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/apigConfig.cmake
              ${CMAKE_BINARY_DIR}/apigConfigVersion.cmake
  DESTINATION ${APIG_CMAKE_DIR})
