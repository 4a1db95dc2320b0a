# Read by cpack (CPACK_PROJECT_CONFIG_FILE): the packages install to /usr, and the build tree
# must have been configured for that prefix, since paths are compiled in (the OS plugins'
# workflow directory) and GNUInstallDirs picks the library directory from it.
if(NOT CPACK_EP_CONFIGURED_PREFIX STREQUAL "/usr")
  message(FATAL_ERROR "edgeprov: Debian packages are built from a tree configured with -DCMAKE_INSTALL_PREFIX=/usr "
                      "(this one: ${CPACK_EP_CONFIGURED_PREFIX}); configure one, e.g. "
                      "cmake -S . -B build/package -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCMAKE_INSTALL_PREFIX=/usr -DEP_BUILD_TESTS=OFF")
endif()
