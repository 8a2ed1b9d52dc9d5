# Test conventions. Every test carries exactly one of these ctest labels:
#   unit  always runs, needs nothing but this machine's kernel
#   dune  needs a usable /dev/kvm (or /dev/dune); without one it reports SKIPPED with the
#         reason (gtest's GTEST_SKIP) and ctest lists it as "Not Run (Skipped)" -- never passed
#   qemu  boots a kernel under QEMU TCG
#   slow  opt-in stress; the README's test command runs everything but this label
include_guard(GLOBAL)
include(GoogleTest)

set(DUNEGC_TEST_LABELS unit dune qemu slow)
# A command test is skipped when a line starts "SKIPPED: " (the "\n" is a real newline
# here). Not gtest's "[  SKIPPED ]" marker: ctest's skip regex wins over the exit status, and
# a command that runs many gtest cases (a QEMU boot) prints that marker for one skipped case
# while another fails -- matching it would report the failing run as skipped.
set(DUNEGC_SKIP_REGEX "^SKIPPED: |\nSKIPPED: ")

function(_dunegc_check_label label)
  if(NOT label IN_LIST DUNEGC_TEST_LABELS)
    message(FATAL_ERROR "test label '${label}' is not one of: ${DUNEGC_TEST_LABELS}")
  endif()
endfunction()

# dunegc_add_gtest(<name> SOURCES <files...> [LIBS <libs...>] LABEL <label>
#                  [TIMEOUT <s>] [ENVIRONMENT <VAR=value...>] [RUN_SERIAL] [OWN_MAIN])
# OWN_MAIN: the sources define main() (e.g. to enter Dune mode first); else gtest_main.
# One executable; one ctest per gtest case, each in its own process (Dune mode, signal
# handlers and paging backends are process-wide state, so cases must not share a process).
function(dunegc_add_gtest name)
  cmake_parse_arguments(A "RUN_SERIAL;OWN_MAIN" "LABEL;TIMEOUT" "SOURCES;LIBS;ENVIRONMENT" ${ARGN})
  _dunegc_check_label(${A_LABEL})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LIBS} GTest::gtest dunegc_warnings)
  if(NOT A_OWN_MAIN)
    target_link_libraries(${name} PRIVATE GTest::gtest_main)
  endif()
  set(props LABELS ${A_LABEL} TIMEOUT ${A_TIMEOUT}
            SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
  if(A_ENVIRONMENT)
    list(APPEND props ENVIRONMENT "${A_ENVIRONMENT}")
  endif()
  if(A_RUN_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST DISCOVERY_TIMEOUT 60
                       TEST_PREFIX "${name}." PROPERTIES ${props})
endfunction()

# dunegc_add_test(<name> COMMAND <cmd...> LABEL <label> [TIMEOUT <s>] [RUN_SERIAL])
# A test that is a command (script, driver, harness). A line starting "SKIPPED: " in its
# output marks it skipped (whatever the exit status), so print it only when skipping.
function(dunegc_add_test name)
  cmake_parse_arguments(A "RUN_SERIAL" "LABEL;TIMEOUT;WORKING_DIRECTORY" "COMMAND;ENVIRONMENT" ${ARGN})
  _dunegc_check_label(${A_LABEL})
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 300)
  endif()
  if(NOT A_WORKING_DIRECTORY)
    set(A_WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR})
  endif()
  add_test(NAME ${name} COMMAND ${A_COMMAND} WORKING_DIRECTORY ${A_WORKING_DIRECTORY})
  set_tests_properties(${name} PROPERTIES LABELS ${A_LABEL} TIMEOUT ${A_TIMEOUT}
                       SKIP_REGULAR_EXPRESSION "${DUNEGC_SKIP_REGEX}")
  if(A_ENVIRONMENT)
    set_tests_properties(${name} PROPERTIES ENVIRONMENT "${A_ENVIRONMENT}")
  endif()
  if(A_RUN_SERIAL)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()
