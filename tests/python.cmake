# Python-driven tests (differential against PyYAML and Jinja2, schema checks,
# command-line behaviour). Each tests/py/test_*.py is one ctest test; it gets
# the build and source dirs in its environment and runs with the pinned
# virtualenv of scripts/test-venv.sh.
execute_process(COMMAND ${PROJECT_SOURCE_DIR}/scripts/test-venv.sh
  OUTPUT_VARIABLE DTK_TEST_PYTHON OUTPUT_STRIP_TRAILING_WHITESPACE
  RESULT_VARIABLE venv_rc)
if(NOT venv_rc EQUAL 0)
  message(FATAL_ERROR "scripts/test-venv.sh failed: cannot create the test virtualenv")
endif()

file(GLOB DTK_PY_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/py/test_*.py)
foreach(src ${DTK_PY_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_test(NAME py_${name} COMMAND ${DTK_TEST_PYTHON} ${src})
  set_tests_properties(py_${name} PROPERTIES LABELS "unit;python"
    ENVIRONMENT "DTK_SOURCE_DIR=${PROJECT_SOURCE_DIR};DTK_BINARY_DIR=${PROJECT_BINARY_DIR};TZ=UTC;PYTHONHASHSEED=0")
endforeach()
