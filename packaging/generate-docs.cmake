# Writes the man pages and shell completions from the built binary's CLI definitions (build step
# of the netlab_docs target): cmake -DNETLAB=path/to/netlab -DOUT=dir -P generate-docs.cmake
#   OUT/man1/netlab*.1.gz             section 1 pages, one per command group, gzip -9n as Debian's
#                                     dh_compress does (no name or time stamp: reproducible)
#   OUT/completions/netlab, _netlab   bash and zsh
foreach(var NETLAB OUT)
  if(NOT ${var})
    message(FATAL_ERROR "generate-docs.cmake: -D${var}=... is required")
  endif()
endforeach()
file(REMOVE_RECURSE "${OUT}/man1" "${OUT}/completions")
file(MAKE_DIRECTORY "${OUT}/man1" "${OUT}/completions")

function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    string(REPLACE ";" " " cmd "${ARGN}")
    message(FATAL_ERROR "generate-docs.cmake: '${cmd}' failed (${rc})")
  endif()
endfunction()

run("${NETLAB}" --generate-man "${OUT}/man1")
run("${NETLAB}" --generate-completion bash "${OUT}/completions/netlab")
run("${NETLAB}" --generate-completion zsh "${OUT}/completions/_netlab")
file(GLOB pages "${OUT}/man1/*.1")
if(NOT pages)
  message(FATAL_ERROR "generate-docs.cmake: ${NETLAB} --generate-man wrote no page")
endif()
run(gzip -9nf ${pages})
