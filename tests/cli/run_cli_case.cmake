# Runs one `vdit` command line and checks how it ended (used by tests/cli/CMakeLists.txt):
#   cmake -DEXE=<vdit> -DARGS="a@@b@@c" -DEXPECT_RC=<exit code> -DEXPECT_REGEX=<regex> [-DEXPECT_MISSING=<path>]
#         [-DEXPECT_EXISTS=<path>] -P run_cli_case.cmake
# ARGS are separated by "@@" so they may hold spaces and semicolons. The regex is matched against stdout
# and stderr together. Unlike PASS_REGULAR_EXPRESSION this also checks the exit code.
string(REPLACE "@@" ";" _args "${ARGS}")
execute_process(COMMAND "${EXE}" ${_args} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 600)
set(all "${out}${err}")
if(NOT "${rc}" STREQUAL "${EXPECT_RC}")
  message(FATAL_ERROR "exit code ${rc}, expected ${EXPECT_RC}\ncommand: ${EXE} ${_args}\noutput:\n${all}")
endif()
if(DEFINED EXPECT_REGEX AND NOT all MATCHES "${EXPECT_REGEX}")
  message(FATAL_ERROR "output does not match /${EXPECT_REGEX}/\ncommand: ${EXE} ${_args}\noutput:\n${all}")
endif()
if(DEFINED EXPECT_MISSING AND EXISTS "${EXPECT_MISSING}")
  message(FATAL_ERROR "${EXPECT_MISSING} exists but must not\noutput:\n${all}")
endif()
if(DEFINED EXPECT_EXISTS AND NOT EXISTS "${EXPECT_EXISTS}")
  message(FATAL_ERROR "${EXPECT_EXISTS} was not written\noutput:\n${all}")
endif()
message(STATUS "ok: ${all}")
