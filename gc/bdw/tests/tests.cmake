# dunegc-bdw tests (included from gc/bdw/CMakeLists.txt): Boehm's API behaving as Boehm
# documents it (gtests, one process per case), C sources compiling unchanged against both
# APIs, the exported symbols, and the drop-in proof on a program built against Boehm.
function(bdw_test name)
  dunegc_add_gtest(${name} SOURCES tests/${name}.cc LIBS dunegc_bdw LABEL unit ${ARGN})
  target_compile_definitions(${name} PRIVATE GC_THREADS)
endfunction()

bdw_test(bdw_alloc_test)
bdw_test(bdw_finalize_test)
bdw_test(bdw_threads_test)
bdw_test(bdw_api_test)
# The library-data test loads gc/'s test DSO.
target_compile_definitions(bdw_api_test PRIVATE TEST_DSO_PATH="$<TARGET_FILE:gc_test_dso>")
add_dependencies(bdw_api_test gc_test_dso)

# One C source, four builds: dunegc-bdw's headers without and with GC_THREADS and with
# GC_DEBUG, and Boehm's own headers and library.
find_package(PkgConfig REQUIRED)
pkg_check_modules(BOEHM_GC REQUIRED IMPORTED_TARGET bdw-gc)
foreach(variant plain threads debug boehm)
  add_executable(bdw_header_test_${variant} tests/header_test.c)
  if(variant STREQUAL "boehm")
    target_link_libraries(bdw_header_test_${variant} PRIVATE PkgConfig::BOEHM_GC dunegc_warnings)
    target_compile_definitions(bdw_header_test_${variant} PRIVATE GC_THREADS)
  else()
    target_link_libraries(bdw_header_test_${variant} PRIVATE dunegc_bdw dunegc_warnings)
  endif()
  if(variant STREQUAL "threads")
    target_compile_definitions(bdw_header_test_${variant} PRIVATE GC_THREADS)
  elseif(variant STREQUAL "debug")
    target_compile_definitions(bdw_header_test_${variant} PRIVATE GC_THREADS GC_DEBUG)
  endif()
  dunegc_add_test(bdw.header_c.${variant} LABEL unit COMMAND $<TARGET_FILE:bdw_header_test_${variant}>)
endforeach()

# The drop-in: a program built against Debian's Boehm, run on it and on libgc.so.1 from here.
add_executable(bdw_dropin_client tests/dropin_client.c)
target_link_libraries(bdw_dropin_client PRIVATE PkgConfig::BOEHM_GC)
add_dependencies(bdw_dropin_client dunegc_bdw_shared)
dunegc_add_test(bdw.dropin LABEL unit
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/dropin_test.sh $<TARGET_FILE:bdw_dropin_client>
          $<TARGET_FILE_DIR:dunegc_bdw_shared>)
pkg_get_variable(BOEHM_LIBDIR bdw-gc libdir)
pkg_get_variable(BOEHM_INCLUDEDIR bdw-gc includedir)
dunegc_add_test(bdw.symbols LABEL unit
  COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/tests/symbols_test.sh $<TARGET_FILE:dunegc_bdw_shared>
          ${BOEHM_LIBDIR}/libgc.so.1 ${BOEHM_INCLUDEDIR})
