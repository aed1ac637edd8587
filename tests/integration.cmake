# Tests against the real local services of scripts/services.sh, labelled
# "integration". scripts/test.sh starts the services, exports their
# DTK_* variables (ctest passes its environment on) and sets
# DTK_REQUIRE_SERVICES=1, under which a missing service fails a test; run by
# hand without the variables, a test skips with the reason instead. A test
# that skipped everything exits 77, which ctest reports as "Not Run".
#
#   tests/py/test_*.py whose docstring has a line "ctest-labels: integration"
#     (registered by python.cmake as unit;python) are relabelled here;
#   tests/integration/test_*.c are cmocka programs linked against dtk;
#   tests/integration/test_*.py run with the pinned test virtualenv.
set(DTK_INTEGRATION_ENV "DTK_SOURCE_DIR=${PROJECT_SOURCE_DIR};DTK_BINARY_DIR=${PROJECT_BINARY_DIR};TZ=UTC;PYTHONHASHSEED=0")

file(GLOB DTK_PY_MAYBE_INTEGRATION CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/py/test_*.py)
foreach(src ${DTK_PY_MAYBE_INTEGRATION})
  get_filename_component(name ${src} NAME_WE)
  file(STRINGS ${src} marker LIMIT_COUNT 40 REGEX "^ctest-labels: integration$")
  if(marker AND TEST py_${name})
    set_tests_properties(py_${name} PROPERTIES LABELS "integration;python"
      SKIP_RETURN_CODE 77 TIMEOUT 600)
  endif()
endforeach()

file(GLOB DTK_INTEGRATION_C CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_*.c)
foreach(src ${DTK_INTEGRATION_C})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE dtk PkgConfig::CMOCKA)
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES LABELS "integration"
    SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT "${DTK_INTEGRATION_ENV}")
endforeach()

file(GLOB DTK_INTEGRATION_PY CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_*.py)
if(DTK_INTEGRATION_PY AND NOT DTK_TEST_PYTHON)
  message(FATAL_ERROR "tests/integration/*.py need the test virtualenv of tests/python.cmake")
endif()
foreach(src ${DTK_INTEGRATION_PY})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME py_${name} COMMAND ${DTK_TEST_PYTHON} ${src})
  set_tests_properties(py_${name} PROPERTIES LABELS "integration;python"
    SKIP_RETURN_CODE 77 TIMEOUT 600 ENVIRONMENT "${DTK_INTEGRATION_ENV}")
endforeach()
