# QEMU TCG test bed: boot Debian's linux-image-amd64 with emulated AMD SVM + nested paging and
# run static programs inside it (kmod/qemu/qemu_harness.py does the work; docs/kmod.md).
#
#   dunegc_add_guest_executable(<name> SOURCES <files...> [LIBS <libs...>])
#       A statically linked program for the guest (its initramfs has no libc). Sanitizers
#       are left out: ASan/UBSan runtimes cannot link statically. In sanitizer builds the
#       program is built only on request and qemu tests are not registered.
#
#   dunegc_add_qemu_test(<name> COMMANDS <guest shell command>...
#                        [BINARIES <targets or files>...] [MODULES <kvm-amd|dune|...>...]
#                        [TIMEOUT <s>] [COMMAND_TIMEOUT <s>] [MEMORY <MiB>]
#                        [EXPECT_FAILURE <kind>] [TCG_THREADS <multi|single>])
#       One ctest (label `qemu`) that builds an initramfs from the built binaries, boots it,
#       loads MODULES (guest kernel modules by name with their modules.dep dependencies;
#       `dune` is this project's kmod/ build), runs each command in order and passes when
#       all exit 0 with no oops/BUG/WARNING/lockup/stall/panic/hang in the guest. TIMEOUT is
#       the guest's wall-clock limit (default 180 s); a command still running after
#       COMMAND_TIMEOUT (default 3/4 of TIMEOUT) gets its tasks' states and kernel stacks
#       printed and is killed. Prints "SKIPPED: <reason>" (ctest:
#       skipped) when qemu, the kernel image, its modules or busybox-static are missing, or
#       when MODULES names dune and kmod/ cannot be built here.
#       EXPECT_FAILURE (kernel|boot|module|command|timeout|exit) inverts the verdict: for the
#       harness's own negative tests.
#       TCG_THREADS single runs all vCPUs on one host thread (still -smp 2, interleaved):
#       for cases that meet the nested-paging defects of QEMU 7.2's multi-threaded TCG
#       (docs/kmod.md, "QEMU's own defects").
include_guard(GLOBAL)

find_package(Python3 COMPONENTS Interpreter)

set(DUNEGC_QEMU_KERNEL "/boot/vmlinuz-6.1.0-56-amd64" CACHE FILEPATH
    "Kernel image the QEMU tests boot (Debian's linux-image-amd64)")
string(REGEX REPLACE "^.*/vmlinuz-" "" _dunegc_krel "${DUNEGC_QEMU_KERNEL}")
set(DUNEGC_KERNEL_RELEASE "${_dunegc_krel}" CACHE STRING
    "Release of the guest kernel: its modules tree and the headers kmod/ builds against")
set(DUNEGC_KERNEL_HEADERS "/usr/src/linux-headers-${DUNEGC_KERNEL_RELEASE}" CACHE PATH
    "Kernel build tree for kmod/ (Debian's linux-headers-amd64)")
set(DUNEGC_QEMU_HARNESS ${PROJECT_SOURCE_DIR}/kmod/qemu/qemu_harness.py)

# Where kmod/ puts dune.ko, known here so that any directory (added before kmod/ or after)
# can boot it; DUNEGC_KMOD_SKIP_REASON is empty when the module can be built.
set(DUNEGC_KMOD_KO ${PROJECT_BINARY_DIR}/kmod/kbuild/dune.ko)
if(NOT DUNEGC_BUILD_KMOD)
  set(DUNEGC_KMOD_SKIP_REASON "kmod/ is not built (DUNEGC_BUILD_KMOD=OFF)")
elseif(NOT EXISTS ${DUNEGC_KERNEL_HEADERS}/Makefile)
  set(DUNEGC_KMOD_SKIP_REASON
      "kernel headers ${DUNEGC_KERNEL_HEADERS} missing (install linux-headers-amd64): dune.ko not built")
else()
  set(DUNEGC_KMOD_SKIP_REASON "")
endif()

function(dunegc_add_guest_executable name)
  cmake_parse_arguments(A "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${A_SOURCES})
  target_link_libraries(${name} PRIVATE ${A_LIBS} dunegc_warnings)
  foreach(prop COMPILE_OPTIONS LINK_OPTIONS)
    get_target_property(opts ${name} ${prop})
    if(opts)
      list(FILTER opts EXCLUDE REGEX "sanitize")
      set_target_properties(${name} PROPERTIES ${prop} "${opts}")
    endif()
  endforeach()
  target_link_options(${name} PRIVATE -static)
  # A guest program that links project libraries would link their ASan/UBSan-instrumented
  # objects statically, which cannot work; in sanitizer builds guest programs are built only
  # on request (dunegc_add_qemu_test registers nothing there: the debug test preset leaves
  # the qemu label out).
  if(DUNEGC_SANITIZE)
    set_target_properties(${name} PROPERTIES EXCLUDE_FROM_ALL TRUE)
  endif()
endfunction()

function(dunegc_add_qemu_test name)
  cmake_parse_arguments(A "" "TIMEOUT;COMMAND_TIMEOUT;MEMORY;EXPECT_FAILURE;TCG_THREADS"
                        "COMMANDS;BINARIES;MODULES" ${ARGN})
  if(NOT DUNEGC_QEMU_TESTS OR NOT DUNEGC_BUILD_TESTS OR DUNEGC_SANITIZE)
    return()
  endif()
  if(NOT A_COMMANDS)
    message(FATAL_ERROR "dunegc_add_qemu_test(${name}): COMMANDS is required")
  endif()
  if(NOT A_TIMEOUT)
    set(A_TIMEOUT 180)
  endif()
  if(NOT Python3_Interpreter_FOUND)
    set(skip "python3 not found")
  endif()
  set(args run --name ${name} --workdir ${CMAKE_CURRENT_BINARY_DIR}/qemu/${name}
      --kernel ${DUNEGC_QEMU_KERNEL} --modules-dir /lib/modules/${DUNEGC_KERNEL_RELEASE}
      --timeout ${A_TIMEOUT})
  if(A_COMMAND_TIMEOUT)
    list(APPEND args --command-timeout ${A_COMMAND_TIMEOUT})
  endif()
  if(A_MEMORY)
    list(APPEND args --memory ${A_MEMORY})
  endif()
  if(A_EXPECT_FAILURE)
    list(APPEND args --expect-failure ${A_EXPECT_FAILURE})
  endif()
  if(A_TCG_THREADS)
    list(APPEND args --tcg-threads ${A_TCG_THREADS})
  endif()
  foreach(b IN LISTS A_BINARIES)
    if(TARGET ${b})
      list(APPEND args --binary $<TARGET_FILE:${b}>)
    else()
      list(APPEND args --binary ${b})
    endif()
  endforeach()
  foreach(m IN LISTS A_MODULES)
    if(m STREQUAL "dune")
      list(APPEND args --module-file ${DUNEGC_KMOD_KO})
      if(DUNEGC_KMOD_SKIP_REASON)
        set(skip "${DUNEGC_KMOD_SKIP_REASON}")
      endif()
    else()
      list(APPEND args --module ${m})
    endif()
  endforeach()
  foreach(c IN LISTS A_COMMANDS)
    list(APPEND args --command ${c})
  endforeach()
  if(skip)
    list(APPEND args --skip-reason ${skip})
  endif()
  if(Python3_Interpreter_FOUND)
    set(python ${Python3_EXECUTABLE})
  else()
    set(python ${CMAKE_COMMAND} -E echo "SKIPPED: python3 not found")
  endif()
  math(EXPR ctest_timeout "${A_TIMEOUT} + 60") # initramfs build and teardown
  dunegc_add_test(${name} COMMAND ${python} ${DUNEGC_QEMU_HARNESS} ${args}
                  LABEL qemu TIMEOUT ${ctest_timeout})
  # TCG runs a vCPU per host thread: two guests at once on a small host would starve
  # each other into spurious RCU-stall and lockup reports.
  set_tests_properties(${name} PROPERTIES RESOURCE_LOCK dunegc_qemu)
endfunction()
