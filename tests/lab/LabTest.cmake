# tests/lab/LabTest.cmake: stsgate_lab_test(), for every test that needs the lab.
#
#   stsgate_lab_test(NAME <name> COMMAND <cmd> [args...] [INSIDE] [TIMEOUT <s>])
#
# The test gets the label `lab`, requires the `lab` fixture (one lab instance per build tree,
# brought up by the `lab_up` test and taken down by `lab_down`, whatever happens in between),
# runs after `lab_selfcheck`, and is reported as skipped when not run as root. Its environment:
#   LAB_ENV       the lab's env file (${STSGATE_LAB_ENV}); `. "$LAB_ENV"` gives LAB_NS,
#                 LAB_RESOLVER, LAB_CA_BUNDLE, LAB_RECV_<NAME>, ... (docs/testing.md)
#   LAB_BIN       the helper scripts (lab-exec, lab-send, lab-wait, lab-messages, ...)
#   STSGATE_BIN   the build's bin/ (stsgate, stsgated)
# With INSIDE the command itself runs inside the lab namespace.
# The words NAME, COMMAND, INSIDE and TIMEOUT are keywords wherever they appear: a command argument
# cannot be one of them (pass "timeout", not "TIMEOUT").
# Include it from any CMakeLists.txt: include(${PROJECT_SOURCE_DIR}/tests/lab/LabTest.cmake)

set(STSGATE_LAB_DIR ${CMAKE_BINARY_DIR}/lab CACHE INTERNAL "state directory of the ctest lab")
set(STSGATE_LAB_ENV ${STSGATE_LAB_DIR}/env CACHE INTERNAL "env file of the ctest lab")

function(stsgate_lab_test)
  cmake_parse_arguments(LT "INSIDE" "NAME;TIMEOUT" "COMMAND" ${ARGN})
  if(NOT LT_NAME OR NOT LT_COMMAND)
    message(FATAL_ERROR "stsgate_lab_test: NAME and COMMAND are required")
  endif()
  if(NOT LT_TIMEOUT)
    set(LT_TIMEOUT 300)
  endif()
  set(mode run)
  if(LT_INSIDE)
    set(mode inside)
  endif()
  add_test(NAME ${LT_NAME}
           COMMAND ${PROJECT_SOURCE_DIR}/tests/lab/ctest-lab.sh ${mode} ${LT_COMMAND})
  set_tests_properties(${LT_NAME} PROPERTIES
    LABELS lab
    FIXTURES_REQUIRED lab
    SKIP_RETURN_CODE 77
    TIMEOUT ${LT_TIMEOUT}
    ENVIRONMENT "LAB_ENV=${STSGATE_LAB_ENV};LAB_BIN=${PROJECT_SOURCE_DIR}/tests/lab/bin;STSGATE_BIN=${CMAKE_BINARY_DIR}/bin")
  if(NOT LT_NAME STREQUAL "lab_selfcheck")
    # The self-check sees the lab as `up` built it: tests that change it come after.
    set_property(TEST ${LT_NAME} APPEND PROPERTY DEPENDS lab_selfcheck)
  endif()
endfunction()
