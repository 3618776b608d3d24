# Installation and packaging: exported CMake targets (find_package(crew)), a
# build-tree export for consumers that skip installing, and crew.pc.
include(CMakePackageConfigHelpers)

set(CREW_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/crew)

# Private pkg-config dependencies are read back from the target, so linking a new
# PkgConfig:: target into crew in the top CMakeLists.txt (libevent, with the
# reactor) is the only edit needed: crewConfig.cmake and crew.pc follow. A static
# libcrew.a names those targets in its link interface; consumers must re-find them.
get_target_property(_crew_links crew LINK_LIBRARIES)
string(REGEX MATCHALL "PkgConfig::[A-Za-z0-9_]+" _crew_pkg_targets "${_crew_links}")
list(REMOVE_DUPLICATES _crew_pkg_targets)
set(CREW_CONFIG_PKG_CHECKS "")
set(CREW_PC_REQUIRES_PRIVATE "")
foreach(_target IN LISTS _crew_pkg_targets)
  string(REPLACE "PkgConfig::" "" _prefix "${_target}")
  # pkg_check_modules() caches its arguments under this name to detect changes;
  # it is the only record of the version constraints the build asked for.
  set(_args "${__pkg_config_arguments_${_prefix}}")
  if(_args STREQUAL "")
    message(FATAL_ERROR "install.cmake: no pkg_check_modules(${_prefix} ...) arguments "
      "found for ${_target}; add the module to cmake/install.cmake by hand")
  endif()
  list(REMOVE_ITEM _args REQUIRED QUIET IMPORTED_TARGET GLOBAL NO_CMAKE_PATH NO_CMAKE_ENVIRONMENT_PATH)
  string(APPEND CREW_CONFIG_PKG_CHECKS
    "pkg_check_modules(${_prefix} QUIET IMPORTED_TARGET ${_args})\n"
    "if(NOT ${_prefix}_FOUND)\n"
    "  set(crew_FOUND FALSE)\n"
    "  set(crew_NOT_FOUND_MESSAGE \"crew needs pkg-config module(s) ${_args}\")\n"
    "  return()\n"
    "endif()\n")
  foreach(_spec IN LISTS _args)
    string(REGEX REPLACE "^([^<>=]+)(>=|<=|=|<|>)(.+)$" "\\1 \\2 \\3" _spec "${_spec}")
    list(APPEND CREW_PC_REQUIRES_PRIVATE "${_spec}")
  endforeach()
endforeach()
list(JOIN CREW_PC_REQUIRES_PRIVATE ", " CREW_PC_REQUIRES_PRIVATE)
# A shared libcrew.so keeps them to itself: its consumers need not have them.
get_target_property(_crew_type crew TYPE)
if(NOT _crew_type STREQUAL "STATIC_LIBRARY")
  set(CREW_CONFIG_PKG_CHECKS "")
elseif(_crew_pkg_targets)
  string(PREPEND CREW_CONFIG_PKG_CHECKS "find_dependency(PkgConfig)\n")
endif()

install(TARGETS crew EXPORT crewTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(EXPORT crewTargets NAMESPACE crew:: DESTINATION ${CREW_CMAKE_DIR})

configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/crewConfig.cmake.in
  ${PROJECT_BINARY_DIR}/crewConfig.cmake
  INSTALL_DESTINATION ${CREW_CMAKE_DIR})
# Before 1.0 every minor release may break the ABI (SOVERSION is 0.<minor>).
write_basic_package_version_file(${PROJECT_BINARY_DIR}/crewConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/crewConfig.cmake ${PROJECT_BINARY_DIR}/crewConfigVersion.cmake
  DESTINATION ${CREW_CMAKE_DIR})

# Build-tree package: find_package(crew) with crew_DIR=<build dir> works without
# installing. crewConfig.cmake includes crewTargets.cmake from its own directory,
# which here is the build directory. A static crew names crew_flags in its link
# interface as $<BUILD_INTERFACE:...>, which the build tree keeps: export it too,
# so that a sanitizer build's link options reach the build tree's consumers.
export(TARGETS crew crew_flags NAMESPACE crew:: FILE ${PROJECT_BINARY_DIR}/crewTargets.cmake)

# crew.pc locates its prefix from its own directory, so an installed tree can be
# moved (or installed with --prefix) without editing it. Absolute install
# directories given by the user cannot be expressed that way and stay absolute.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(CREW_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(CREW_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(CREW_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH _up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" _up "${_up}")
  set(CREW_PC_PREFIX "\${pcfiledir}/${_up}")
  set(CREW_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(CREW_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/crew.pc.in ${PROJECT_BINARY_DIR}/crew.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/crew.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
