# What `cmake --install` puts where (GNU/Debian layout), and the Debian package CPack builds from it.
# Included by the top-level CMakeLists.txt after the netlab target exists.
include(GNUInstallDirs)

# Generated documentation: sanitizer builds are never installed (and their binary may not even
# start without help, see scripts/test.sh's TSan stage), so they skip it.
option(NETLAB_DOCS "Generate man pages and shell completions from the CLI at build time" ON)
if(NETLAB_SANITIZE OR NETLAB_TSAN)
  set(NETLAB_DOCS OFF)
endif()
# `cmake --install --strip` semantics without the flag: the installed binary (and so the .deb)
# carries no debug info, whatever the build type (scripts/test.sh's RelWithDebInfo -g1 binary:
# 36 MB, installed 3.7 MB).
option(NETLAB_INSTALL_STRIP "Strip the installed binary" ON)

set(NETLAB_GENERATED ${PROJECT_BINARY_DIR}/generated)
if(NETLAB_DOCS)
  # `cmake --build --target netlab` alone does not write them: say so instead of "cannot find".
  install(CODE "if(NOT EXISTS \"${NETLAB_GENERATED}/docs.stamp\")
    message(FATAL_ERROR \"netlab: install: the man pages and completions are not built (run: cmake --build ${PROJECT_BINARY_DIR} --target netlab_docs)\")
  endif()")
endif()
if(NETLAB_INSTALL_STRIP)
  install(CODE "set(CMAKE_INSTALL_DO_STRIP 1)")
endif()
install(TARGETS netlab RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

if(NETLAB_DOCS)
  add_custom_command(OUTPUT ${NETLAB_GENERATED}/docs.stamp
    COMMAND ${CMAKE_COMMAND} -DNETLAB=$<TARGET_FILE:netlab> -DOUT=${NETLAB_GENERATED}
            -P ${PROJECT_SOURCE_DIR}/packaging/generate-docs.cmake
    COMMAND ${CMAKE_COMMAND} -E touch ${NETLAB_GENERATED}/docs.stamp
    DEPENDS netlab ${PROJECT_SOURCE_DIR}/packaging/generate-docs.cmake
    COMMENT "Generating man pages and shell completions"
    VERBATIM)
  add_custom_target(netlab_docs ALL DEPENDS ${NETLAB_GENERATED}/docs.stamp)
  install(DIRECTORY ${NETLAB_GENERATED}/man1/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
          FILES_MATCHING PATTERN "*.1.gz")
  install(FILES ${NETLAB_GENERATED}/completions/netlab DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions)
  install(FILES ${NETLAB_GENERATED}/completions/_netlab DESTINATION ${CMAKE_INSTALL_DATADIR}/zsh/vendor-completions)
endif()
file(GLOB NETLAB_DOC_PAGES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/docs/*.md)
install(FILES ${PROJECT_SOURCE_DIR}/README.md ${NETLAB_DOC_PAGES} DESTINATION ${CMAKE_INSTALL_DOCDIR})

# cpack -G DEB (or `cmake --build build --target package`) → netlab_<version>_amd64.deb.
set(NETLAB_PACKAGE_CONTACT "netlab maintainers <netlab@localhost>" CACHE STRING
    "Maintainer field of the Debian package (Name <address>)")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME netlab)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT ${NETLAB_PACKAGE_CONTACT})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "network lab in one binary: WebSocket, TCP, UDP and TFTP servers and clients")
# The extended description (CPack puts the summary above it and indents each line).
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION
    "Real servers and clients for the protocols people learn networking with:\na WebSocket echo server and client, TCP and UDP acknowledge/echo servers and\nnetcat-like clients with a load mode, and a TFTP server and client.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)          # netlab_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)           # Depends: from dpkg-shlibdeps (package dpkg-dev)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_STRIP_FILES ON)
include(CPack)
