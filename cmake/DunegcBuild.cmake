# Build conventions shared by every directory.
#
#   dunegc_warnings        interface target: -Wall -Wextra -Werror for project code
#   DUNEGC_SANITIZE        ON in the `debug` preset: ASan + UBSan everywhere
#   dunegc_add_library()   one object library -> static + shared + pkg-config + install
include_guard(GLOBAL)

find_package(Threads REQUIRED)

add_library(dunegc_warnings INTERFACE)
target_compile_options(dunegc_warnings INTERFACE
  -Wall -Wextra -Werror
  $<$<COMPILE_LANGUAGE:CXX>:-Wnon-virtual-dtor>)

option(DUNEGC_SANITIZE "Build with AddressSanitizer and UndefinedBehaviorSanitizer" OFF)
if(DUNEGC_SANITIZE)
  add_compile_options(-fsanitize=address,undefined -fno-omit-frame-pointer
                      -fno-sanitize-recover=undefined)
  add_link_options(-fsanitize=address,undefined)
endif()

# dunegc_add_library(<name>
#     SOURCES <files...>              compiled once (PIC) into <name>_obj
#     [EMBED <objlibs...>]            object libraries whose objects become part of it
#     [PUBLIC_INCLUDE <dir>]          installed to ${includedir}/<INCLUDE_SUBDIR>
#     [INCLUDE_SUBDIR <dir>]          ("" = directly into ${includedir})
#     [OUTPUT_NAME <n>] [SOVERSION <v>] [LIBDIR_SUBDIR <dir>]
#     [DEPENDS <dunegc libs...>]      <name> links <dep>, <name>_shared links <dep>_shared
#     [LINK_LIBS <external...>]       linked by both (e.g. Threads::Threads dl)
#     [PKGCONFIG <module>] [DESCRIPTION <text>]
#     [PC_LIBS_PRIVATE <text>])
#
# Creates <name> (static; what in-tree tests and the static QEMU binaries link) and
# <name>_shared; both are installed and exported as dunegc::<name>[_shared].
function(dunegc_add_library name)
  cmake_parse_arguments(A "" "PUBLIC_INCLUDE;INCLUDE_SUBDIR;OUTPUT_NAME;SOVERSION;LIBDIR_SUBDIR;PKGCONFIG;DESCRIPTION;PC_LIBS_PRIVATE"
                        "SOURCES;EMBED;DEPENDS;LINK_LIBS" ${ARGN})
  if(NOT A_OUTPUT_NAME)
    set(A_OUTPUT_NAME ${name})
  endif()
  set(incdir "${CMAKE_INSTALL_INCLUDEDIR}")
  if(A_INCLUDE_SUBDIR)
    set(incdir "${CMAKE_INSTALL_INCLUDEDIR}/${A_INCLUDE_SUBDIR}")
  endif()
  set(libdir "${CMAKE_INSTALL_LIBDIR}")
  if(A_LIBDIR_SUBDIR)
    set(libdir "${CMAKE_INSTALL_LIBDIR}/${A_LIBDIR_SUBDIR}")
  endif()

  add_library(${name}_obj OBJECT ${A_SOURCES})
  target_link_libraries(${name}_obj PRIVATE dunegc_warnings)
  foreach(dep IN LISTS A_DEPENDS)
    target_link_libraries(${name}_obj PUBLIC ${dep})
  endforeach()
  target_link_libraries(${name}_obj PUBLIC ${A_LINK_LIBS})
  if(A_PUBLIC_INCLUDE)
    target_include_directories(${name}_obj PUBLIC
      $<BUILD_INTERFACE:${A_PUBLIC_INCLUDE}> $<INSTALL_INTERFACE:${incdir}>)
  endif()

  set(objs $<TARGET_OBJECTS:${name}_obj>)
  foreach(e IN LISTS A_EMBED)
    list(APPEND objs $<TARGET_OBJECTS:${e}>)
  endforeach()

  add_library(${name} STATIC ${objs})
  add_library(${name}_shared SHARED ${objs})
  set_target_properties(${name} PROPERTIES OUTPUT_NAME ${A_OUTPUT_NAME})
  set_target_properties(${name}_shared PROPERTIES OUTPUT_NAME ${A_OUTPUT_NAME})
  if(A_SOVERSION)
    set_target_properties(${name}_shared PROPERTIES SOVERSION ${A_SOVERSION})
  endif()
  if(A_LIBDIR_SUBDIR)
    # Keep the two outputs apart in the build tree too (e.g. a libgc.so.1 drop-in).
    set_target_properties(${name} ${name}_shared PROPERTIES
      ARCHIVE_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${A_LIBDIR_SUBDIR}
      LIBRARY_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${A_LIBDIR_SUBDIR})
  endif()
  foreach(t ${name} ${name}_shared)
    if(A_PUBLIC_INCLUDE)
      target_include_directories(${t} PUBLIC
        $<BUILD_INTERFACE:${A_PUBLIC_INCLUDE}> $<INSTALL_INTERFACE:${incdir}>)
    endif()
    target_link_libraries(${t} PUBLIC ${A_LINK_LIBS})
    foreach(e IN LISTS A_EMBED)
      # Embedded objects keep their usage requirements (include dirs, links).
      target_link_libraries(${t} PRIVATE $<BUILD_INTERFACE:${e}>)
    endforeach()
  endforeach()
  foreach(dep IN LISTS A_DEPENDS)
    target_link_libraries(${name} PUBLIC ${dep})
    target_link_libraries(${name}_shared PUBLIC ${dep}_shared)
  endforeach()
  add_library(dunegc::${name} ALIAS ${name})
  add_library(dunegc::${name}_shared ALIAS ${name}_shared)

  install(TARGETS ${name} ${name}_shared EXPORT dunegcTargets
          ARCHIVE DESTINATION ${libdir}
          LIBRARY DESTINATION ${libdir})
  if(A_PUBLIC_INCLUDE)
    install(DIRECTORY ${A_PUBLIC_INCLUDE}/ DESTINATION ${incdir})
  endif()

  if(A_PKGCONFIG)
    set(PC_NAME ${A_PKGCONFIG})
    set(PC_DESCRIPTION "${A_DESCRIPTION}")
    set(PC_LIB ${A_OUTPUT_NAME})
    # Relocatable: the prefix is found from where the .pc file lies, so an install into any
    # prefix (or a moved one) works without reconfiguring.
    file(RELATIVE_PATH pc_up "/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/")
    string(REGEX REPLACE "/$" "" pc_up "${pc_up}")
    set(PC_PREFIX "\${pcfiledir}/${pc_up}")
    set(PC_INCLUDEDIR "\${prefix}/${incdir}")
    set(PC_LIBDIR "\${prefix}/${libdir}")
    set(PC_REQUIRES "")
    foreach(dep IN LISTS A_DEPENDS)
      get_property(depmod GLOBAL PROPERTY DUNEGC_PKGCONFIG_${dep})
      if(depmod)
        string(APPEND PC_REQUIRES " ${depmod}")
      endif()
    endforeach()
    set(PC_LIBS_PRIVATE "-pthread ${A_PC_LIBS_PRIVATE}")
    configure_file(${PROJECT_SOURCE_DIR}/cmake/module.pc.in
                   ${CMAKE_CURRENT_BINARY_DIR}/${A_PKGCONFIG}.pc @ONLY)
    install(FILES ${CMAKE_CURRENT_BINARY_DIR}/${A_PKGCONFIG}.pc
            DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
    set_property(GLOBAL PROPERTY DUNEGC_PKGCONFIG_${name} ${A_PKGCONFIG})
  endif()
endfunction()

# dunegc_add_pkgconfig_smoke(<module> <source>)
# Registers a small C program that the `install.*` tests build against an installed prefix
# with `cc <source> $(pkg-config --cflags --libs <module>)` and then run.
function(dunegc_add_pkgconfig_smoke module source)
  set_property(GLOBAL APPEND PROPERTY DUNEGC_PKGCONFIG_SMOKES
               "${module}=${CMAKE_CURRENT_SOURCE_DIR}/${source}")
endfunction()
