# Writes packaging/ifppctl.bash.in to OUT with @IFPPCTL_WORDS@ = the output of `IFPPCTL --complete-words`.
execute_process(COMMAND ${IFPPCTL} --complete-words OUTPUT_VARIABLE IFPPCTL_WORDS RESULT_VARIABLE rc)
if(NOT rc EQUAL 0 OR IFPPCTL_WORDS STREQUAL "")
  message(FATAL_ERROR "${IFPPCTL} --complete-words failed (${rc})")
endif()
string(STRIP "${IFPPCTL_WORDS}" IFPPCTL_WORDS)
configure_file(${IN} ${OUT} @ONLY)
