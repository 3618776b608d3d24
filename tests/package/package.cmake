# The install and packaging check (tests/package/check.sh). It builds its own
# non-sanitized copies of crew, so a sanitizer build skips it.
if(CREW_SANITIZE STREQUAL "")
  add_test(NAME package.install
    COMMAND bash ${PROJECT_SOURCE_DIR}/tests/package/check.sh ${PROJECT_SOURCE_DIR}
      ${CMAKE_CURRENT_BINARY_DIR}/package-work)
  set_tests_properties(package.install PROPERTIES LABELS package TIMEOUT 600)
endif()
