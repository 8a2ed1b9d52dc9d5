# Collector tests (included from gc/CMakeLists.txt). Each gtest case runs in its own
# process, so each test initialises the process's collector the way it needs.
set(_gc_test_dirs ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/tests)
function(gc_test name)
  dunegc_add_gtest(${name} SOURCES tests/${name}.cc LIBS dunegc LABEL unit ${ARGN})
  target_include_directories(${name} PRIVATE ${_gc_test_dirs})
endfunction()

gc_test(gc_alloc_api_test)
gc_test(gc_stress_test TIMEOUT 600)
gc_test(gc_threads_test)
gc_test(gc_finalize_test)
