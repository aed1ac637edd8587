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

# The tests that talk to Kafka with librdkafka directly link it (found, if at
# all, by CMakeLists.txt); without it they build to a main that skips, or fails
# under DTK_REQUIRE_SERVICES=1 (integration/kafka_test.h).
foreach(name test_kafka_librdkafka test_librdkafka_defects)
  if(NOT TARGET ${name})
    continue()
  endif()
  if(RDKAFKA_FOUND)
    target_link_libraries(${name} PRIVATE PkgConfig::RDKAFKA)
  else()
    target_compile_definitions(${name} PRIVATE DTK_NO_RDKAFKA=1)
  endif()
endforeach()
# test_librdkafka_defects stops and starts the shared broker: RUN_SERIAL, with
# a label of its own (ctest -L librdkafka_defects).
if(TARGET test_librdkafka_defects)
  set_tests_properties(test_librdkafka_defects PROPERTIES
    LABELS "integration;librdkafka_defects" RUN_SERIAL TRUE)
endif()

file(GLOB DTK_INTEGRATION_PY CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_*.py)
if(DTK_INTEGRATION_PY AND NOT DTK_TEST_PYTHON)
  message(FATAL_ERROR "tests/integration/*.py need the test virtualenv of tests/python.cmake")
endif()
foreach(src ${DTK_INTEGRATION_PY})
  get_filename_component(name ${src} NAME_WE)
  if(name STREQUAL "test_fleet_faults")
    continue() # registered per test method below
  endif()
  # A docstring line "ctest-labels: a;b" names its labels (python is
  # added): "integration;airflow" joins the integration tier (which CI also
  # runs under ASan) and a tier of its own; without "integration" a test
  # runs only in the plain build's full ctest run (e.g. under valgrind).
  set(labels "integration;python")
  file(STRINGS ${src} extra LIMIT_COUNT 40 REGEX "^ctest-labels: ")
  if(extra)
    string(REGEX REPLACE "^ctest-labels: *" "" extra "${extra}")
    set(labels "python;${extra}")
    list(REMOVE_DUPLICATES labels)
  endif()
  add_test(NAME py_${name} COMMAND ${DTK_TEST_PYTHON} ${src})
  set_tests_properties(py_${name} PROPERTIES LABELS "${labels}"
    SKIP_RETURN_CODE 77 TIMEOUT 900 ENVIRONMENT "${DTK_INTEGRATION_ENV}")
endforeach()

# The fleet fault tier (tests/integration/test_fleet_faults.py): one ctest
# test per method, so each can fail on its own, labelled
# integration;python;fleet plus its own name (ctest -L fleet runs the tier,
# ctest -L fleet_kill9 one test). RUN_SERIAL: they stop and start the shared
# Kafka and Redis with scripts/services.sh, which would break any test
# running beside them, and their timings assume the machine to themselves.
set(DTK_FLEET_FAULTS ${CMAKE_CURRENT_SOURCE_DIR}/integration/test_fleet_faults.py)
if(EXISTS ${DTK_FLEET_FAULTS})
  foreach(t 300_configs outage_order kill9 redis_outage broker_restart)
    add_test(NAME fleet_${t} COMMAND ${DTK_TEST_PYTHON} ${DTK_FLEET_FAULTS}
      FleetFaults.test_${t})
    set_tests_properties(fleet_${t} PROPERTIES LABELS "integration;python;fleet;fleet_${t}"
      SKIP_RETURN_CODE 77 TIMEOUT 600 RUN_SERIAL TRUE ENVIRONMENT "${DTK_INTEGRATION_ENV}")
  endforeach()
endif()
