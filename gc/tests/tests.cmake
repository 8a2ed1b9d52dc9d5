# Collector tests (included from gc/CMakeLists.txt). Each gtest case runs in its own
# process, so each test initialises the process's collector the way it needs.
set(_gc_test_dirs ${CMAKE_CURRENT_SOURCE_DIR}/src ${CMAKE_CURRENT_SOURCE_DIR}/tests
                   ${PROJECT_SOURCE_DIR}/allocators/include)
function(gc_test name)
  dunegc_add_gtest(${name} SOURCES tests/${name}.cc LIBS dunegc LABEL unit ${ARGN})
  target_include_directories(${name} PRIVATE ${_gc_test_dirs})
endfunction()

gc_test(gc_alloc_api_test)
gc_test(gc_stress_test TIMEOUT 600)
gc_test(gc_mark_test)
gc_test(gc_threads_test)
gc_test(gc_finalize_test)
gc_test(gc_policy_test)
gc_test(gc_verify_test)

add_library(gc_test_dso SHARED tests/test_dso.c)
gc_test(gc_dso_test)
target_compile_definitions(gc_dso_test PRIVATE TEST_DSO_PATH="$<TARGET_FILE:gc_test_dso>")
add_dependencies(gc_dso_test gc_test_dso)

# DUNEGC_STATS=1 prints the report at exit; without it, nothing.
add_executable(gc_stats_exit_demo tests/stats_exit_demo.c)
target_link_libraries(gc_stats_exit_demo PRIVATE dunegc dunegc_warnings)
dunegc_add_test(gc_stats_at_exit LABEL unit COMMAND sh -c
  "out=$(DUNEGC_STATS=1 $<TARGET_FILE:gc_stats_exit_demo> 2>&1) && echo \"$out\" | grep -q 'dunegc: [0-9]* collections' && echo \"$out\" | grep -q 'pause histogram' && echo \"$out\" | grep -q 'phases (total ms): stop' && test -z \"$($<TARGET_FILE:gc_stats_exit_demo> 2>&1)\" && echo \"$out\"")
gc_test(gc_typed_test)
