# The CMake package: find_package(dunegc) gives dunegc::<lib> and dunegc::<lib>_shared.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(DUNEGC_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/dunegc)
install(EXPORT dunegcTargets NAMESPACE dunegc:: DESTINATION ${DUNEGC_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/dunegcConfig.cmake.in
  ${PROJECT_BINARY_DIR}/dunegcConfig.cmake INSTALL_DESTINATION ${DUNEGC_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/dunegcConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/dunegcConfig.cmake
              ${PROJECT_BINARY_DIR}/dunegcConfigVersion.cmake
        DESTINATION ${DUNEGC_CMAKE_DIR})

# install.prefix: `cmake --install` into an empty prefix, then build and run every
# registered pkg-config smoke program and a find_package(dunegc) consumer against it.
if(DUNEGC_BUILD_TESTS)
  get_property(smokes GLOBAL PROPERTY DUNEGC_PKGCONFIG_SMOKES)
  # An outside program linked to sanitized libraries needs the sanitizer runtime first.
  set(consumer_flags "")
  if(DUNEGC_SANITIZE)
    set(consumer_flags "-fsanitize=address,undefined")
  endif()
  dunegc_add_test(install.prefix
    COMMAND ${CMAKE_COMMAND} -E env "CONSUMER_FLAGS=${consumer_flags}"
            ${PROJECT_SOURCE_DIR}/scripts/check_install.sh ${PROJECT_BINARY_DIR} ${smokes}
    LABEL unit TIMEOUT 600 RUN_SERIAL)
endif()
