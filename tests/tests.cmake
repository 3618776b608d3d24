# The test list: one crew_add_test() per module.
include(${CMAKE_CURRENT_LIST_DIR}/package/package.cmake)
crew_add_test(switch WHITEBOX WORKERS 1 TIMEOUT 60 LOPTS "LINKER:--push-state,--no-as-needed,-lm,--pop-state")
# Runtime, task and scheduler API tests (one executable each, workers 1 2 4).
crew_add_test(runtime WORKERS 1 2 4 TIMEOUT 120)
crew_add_test(task WORKERS 1 2 4 TIMEOUT 120)
crew_add_test(sched WORKERS 1 2 4 TIMEOUT 300)
crew_add_test(stack WORKERS 1 2 4 TIMEOUT 120)
# The migration checks, built at -O2, -O2 -fPIC and -O2 -flto (RELIABILITY.md 3.1).
crew_add_test(migration_O2 SOURCES test_migration.c WORKERS 1 2 4 TIMEOUT 120 COPTS -O2)
crew_add_test(migration_fpic SOURCES test_migration.c WORKERS 1 2 4 TIMEOUT 120 COPTS -O2 -fPIC)
crew_add_test(migration_lto SOURCES test_migration.c WORKERS 1 2 4 TIMEOUT 120 COPTS -O2 -flto
  LOPTS -flto)
crew_add_test(runq WHITEBOX WORKERS 1 TIMEOUT 300)
crew_add_test(inject WHITEBOX WORKERS 1 TIMEOUT 300)
add_test(NAME docs.api COMMAND bash ${PROJECT_SOURCE_DIR}/tests/docs/check_api_doc.sh ${PROJECT_SOURCE_DIR})
set_tests_properties(docs.api PROPERTIES LABELS docs TIMEOUT 60)
crew_add_test(oom WORKERS 1 2 4 TIMEOUT 180)
crew_add_test(cancel WORKERS 1 2 4 TIMEOUT 180)
crew_add_test(time WORKERS 1 2 4 TIMEOUT 180)
crew_add_test(deadline WORKERS 1 2 4 TIMEOUT 180)
# The USDT probes documented in runtime/probes.h are in the library.
if(CREW_WITH_USDT)
  add_test(NAME usdt.probes COMMAND bash ${PROJECT_SOURCE_DIR}/tests/usdt/check_probes.sh $<TARGET_FILE:crew>)
  set_tests_properties(usdt.probes PROPERTIES LABELS usdt TIMEOUT 60)
endif()
# Synchronisation primitives and queues (include/crew/sync.h, queue.h).
crew_add_test(sync WORKERS 1 2 4 TIMEOUT 180)
crew_add_test(sync_race WORKERS 1 2 4 TIMEOUT 300)
crew_add_test(queue WORKERS 1 2 4 TIMEOUT 180)
